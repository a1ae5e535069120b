//! The second round of hardening, tried as an attacker with a signed-in operator or viewer
//! would: files that lie about their size, requests priced by what they return, sign-ins that
//! cannot be raced, bodies refused before they are read, and open subscriptions that follow what
//! their caller may see.

mod connections;
mod cost;
mod files;
mod logins;
mod odds;
mod subscriptions;
