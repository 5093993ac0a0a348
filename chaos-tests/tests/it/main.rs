mod faults;
mod haproxy;
mod kill_leader;
mod proxy;
