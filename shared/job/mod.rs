//! What every job shares, below the jobs themselves: the progress tracker every long job
//! reports to ([`headway`]). Jobs import this module; it imports no job.

pub mod headway;
