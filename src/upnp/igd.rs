//! A small reference IGD, sans-IO: the server side of what [`super::Client`] speaks, with a
//! port-mapping table, leases and UPnP errors. The model (`models/src/upnp.rs`), the fuzz
//! target `upnp_client` and the unit tests run the client against it; it is not a router.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use super::http::MAX_HEADERS;
use super::xml::{parse_soap, ServiceType};
use super::{MappingKey, Protocol, ERR_CONFLICT, ERR_NO_SUCH_ENTRY};
use crate::time::Time;

/// One mapping in the IGD's table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Where it forwards to.
    pub internal: SocketAddr,
    /// When it lapses (`None`: permanent).
    pub expires: Option<Time>,
}

/// What one request did to the IGD (for models and tests).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The description was served.
    Described,
    /// The external address was told.
    ExternalIp,
    /// A mapping was added or refreshed.
    Added(MappingKey),
    /// A mapping was deleted.
    Deleted(MappingKey),
    /// An error was answered.
    Error(u16),
}

/// The reference IGD.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Igd {
    /// Its HTTP address (location and control URL host).
    pub addr: SocketAddr,
    /// Its external address.
    pub external_ip: IpAddr,
    /// The service it offers.
    pub service: ServiceType,
    /// The port-mapping table.
    pub table: BTreeMap<MappingKey, Entry>,
}

impl Igd {
    /// An IGD at `addr` with external address `external_ip` and an empty table.
    pub fn new(addr: SocketAddr, external_ip: IpAddr) -> Self {
        Igd {
            addr,
            external_ip,
            service: ServiceType::WanIp1,
            table: BTreeMap::new(),
        }
    }

    /// The SSDP answer to an M-SEARCH.
    pub fn ssdp_answer(&self) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:ip2p-igd::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\nLOCATION: http://{}/rootDesc.xml\r\n\r\n",
            self.addr
        )
        .into_bytes()
    }

    /// Drop every mapping whose lease has run out at `now`.
    pub fn expire(&mut self, now: Time) {
        self.table
            .retain(|_, e| e.expires.map_or(true, |t| t > now));
    }

    /// The complete HTTP request at the start of `req`, answered; `None` while incomplete.
    /// Anything unparseable gets a 400.
    pub fn answer(&mut self, now: Time, req: &[u8]) -> Option<(Vec<u8>, Action)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut r = httparse::Request::new(&mut headers);
        let head = match r.parse(req) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => return Some((status(400, ""), Action::Error(400))),
        };
        let len = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                core::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .unwrap_or(0);
        let body = req.get(head..head.checked_add(len)?)?;
        if r.method == Some("GET") {
            return Some((status(200, &self.description()), Action::Described));
        }
        let action = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("soapaction"))
            .and_then(|h| core::str::from_utf8(h.value).ok())
            .and_then(|v| v.trim_matches('"').rsplit('#').next())
            .map(String::from)
            .unwrap_or_default();
        let Ok(f) = parse_soap(body) else {
            return Some((fault(402), Action::Error(402)));
        };
        let key = || -> Option<MappingKey> {
            let protocol = match f.get("NewProtocol")? {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => return None,
            };
            let external_port = f.get("NewExternalPort")?.parse().ok()?;
            Some(MappingKey {
                protocol,
                external_port,
            })
        };
        self.expire(now);
        match action.as_str() {
            "GetExternalIPAddress" => Some((
                self.ok(
                    &action,
                    &format!(
                        "<NewExternalIPAddress>{}</NewExternalIPAddress>",
                        self.external_ip
                    ),
                ),
                Action::ExternalIp,
            )),
            "AddPortMapping" => {
                let (Some(k), Some(ip), Some(port), Some(lease)) = (
                    key(),
                    f.get("NewInternalClient")
                        .and_then(|s| s.parse::<IpAddr>().ok()),
                    f.get("NewInternalPort").and_then(|s| s.parse::<u16>().ok()),
                    f.get("NewLeaseDuration")
                        .and_then(|s| s.parse::<u32>().ok()),
                ) else {
                    return Some((fault(402), Action::Error(402)));
                };
                let internal = SocketAddr::new(ip, port);
                if self.table.get(&k).is_some_and(|e| e.internal != internal) {
                    return Some((fault(ERR_CONFLICT), Action::Error(ERR_CONFLICT)));
                }
                let expires = (lease > 0).then(|| now + Duration::from_secs(u64::from(lease)));
                self.table.insert(k, Entry { internal, expires });
                Some((self.ok(&action, ""), Action::Added(k)))
            }
            "DeletePortMapping" => {
                let Some(k) = key() else {
                    return Some((fault(402), Action::Error(402)));
                };
                if self.table.remove(&k).is_none() {
                    return Some((fault(ERR_NO_SUCH_ENTRY), Action::Error(ERR_NO_SUCH_ENTRY)));
                }
                Some((self.ok(&action, ""), Action::Deleted(k)))
            }
            _ => Some((fault(401), Action::Error(401))),
        }
    }

    /// The device description (miniupnpd's shape, abridged).
    pub fn description(&self) -> String {
        format!(
            "<?xml version=\"1.0\"?>\r\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\"><specVersion><major>1</major><minor>0</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service><serviceType>{}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList></device></deviceList></device></deviceList></device></root>\r\n",
            self.service.urn()
        )
    }

    fn ok(&self, action: &str, inner: &str) -> Vec<u8> {
        status(
            200,
            &format!(
                "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action}Response xmlns:u=\"{}\">{inner}</u:{action}Response></s:Body></s:Envelope>\r\n",
                self.service.urn()
            ),
        )
    }
}

/// A SOAP fault with UPnP error `code`.
pub fn fault(code: u16) -> Vec<u8> {
    status(
        500,
        &format!(
            "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>{code}</errorCode><errorDescription>error {code}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>\r\n"
        ),
    )
}

fn status(code: u16, body: &str) -> Vec<u8> {
    let reason = if code == 200 { "OK" } else { "Error" };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
