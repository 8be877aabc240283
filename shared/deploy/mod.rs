//! What a deployment needs besides the jobs: the database users it connects as
//! (`setup-users`) and the checks that the deployment is whole (`doctor`).

pub mod doctor;
pub mod users;
