mod faults;
mod kill_leader;
