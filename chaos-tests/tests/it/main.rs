mod faults;
mod kill_leader;
mod soak;
