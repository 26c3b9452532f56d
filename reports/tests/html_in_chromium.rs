//! The HTML report as a person sees it: rendered by headless Chromium, then
//! the screenshot is checked for the styled page (the dark header band, a
//! red FAIL badge and a green PASS badge).

use lab_core::TranscriptRecorder;
use reports::{Failure, LabReport, RunReport, Verdict};
use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

fn count_pixels(img: &[u8], channels: usize, rgb: [u8; 3], tolerance: u8) -> usize {
    img.chunks(channels).filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tolerance)).count()
}

#[test]
#[ignore = "needs Chromium (apt-get install chromium); .ci/run installs it and runs this with --ignored"]
fn html_report_renders_in_headless_chromium() {
    let browser = chromium().expect("Chromium is installed (apt-get install chromium)");
    let rec = TranscriptRecorder::new("spammer -> relay");
    rec.server("220 external.sysiphus.com ESMTP Sendmail 8.13.4/8.13.4");
    rec.client("RCPT TO:<victim@elsewhere.example>");
    rec.server("550 5.7.1 <victim@elsewhere.example>... Relaying denied");
    let mut failed = LabReport::new("open-relay/denied", "scenarios/open-relay/denied.yaml");
    failed.verdict = Verdict::Failed;
    failed.failures.push(Failure { what: "rcpt".into(), expected: "250".into(), actual: "550".into(), context: None });
    failed.observations.sessions.push(rec.snapshot());
    let mut passed = LabReport::new("routing/inbound", "scenarios/routing/inbound.yaml");
    passed.verdict = Verdict::Passed;
    let mut run = RunReport::new();
    run.labs = vec![failed, passed];

    let dir = std::env::temp_dir().join(format!("relaylab-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    reports::html::write(&run, &html).unwrap();
    let shot = dir.join("shot.png");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,800",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let img = &buf[..info.buffer_size()];
    assert_eq!((info.width, info.height), (1000, 800));
    // The header band (#1d2430) spans the top of the page.
    let header = count_pixels(&img[..(info.width as usize * 40 * channels)], channels, [0x1d, 0x24, 0x30], 6);
    assert!(header > 1000 * 30, "header band not rendered: {header} dark pixels in the top 40 rows");
    // Verdict badges: red FAIL (#c62828) and green PASS (#2e7d32).
    assert!(count_pixels(img, channels, [0xc6, 0x28, 0x28], 8) > 200, "no FAIL badge rendered");
    assert!(count_pixels(img, channels, [0x2e, 0x7d, 0x32], 8) > 200, "no PASS badge rendered");
}
