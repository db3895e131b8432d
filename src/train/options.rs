//! How `daa run` goes about a run: resume or rerun, progress bars, and the interruptions
//! that tests of resume ask for.

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue an interrupted run from its last checkpoint.
    pub resume: bool,
    /// Run again even if the run directory holds a finished result.
    pub rerun: bool,
    /// Stop after this many epochs of this session, as an interruption would (tests resume).
    pub stop_after_epochs: Option<usize>,
    /// Stop source pretraining after this many epochs of this session, likewise.
    pub stop_pretraining_after: Option<usize>,
    /// Progress bars on the terminal.
    pub progress: bool,
    /// Only pretrain the source model (if the method needs one), then return.
    pub pretrain_only: bool,
}
