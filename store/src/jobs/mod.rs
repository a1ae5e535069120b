//! The job stores: bulk jobs with their rows (applied to SIMs with their audit entries as they
//! are answered) and export jobs, both claimed under a lease with `FOR UPDATE SKIP LOCKED`.

mod bulk;
mod exports;
