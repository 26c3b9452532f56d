//! Exit codes of the `relaylab` command, in one place.

/// Every selected lab passed (or `check`/`list` succeeded).
pub const OK: i32 = 0;
/// At least one lab missed its expectations or ran out of its budget.
pub const LAB_FAILED: i32 = 1;
/// A scenario is invalid, or the harness itself failed.
pub const INVALID: i32 = 2;
/// Nothing was selected, or every selected lab was skipped: nothing ran is not a pass.
pub const NOTHING_RAN: i32 = 4;
