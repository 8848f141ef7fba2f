//! UPnP IGD client, sans-IO (SSDP discovery, description, WANIPConnection SOAP; steps E.1–E.5).
//!
//! Work in progress: see `spec/upnp.md`.
