//! What every job shares, below the jobs themselves: the progress tracker every long job
//! reports to ([`headway`]) and how a job alerts a person ([`alert`]). Jobs import this
//! module; it imports no job.

pub mod alert;
pub mod headway;
