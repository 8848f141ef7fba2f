//! SSDP discovery (UPnP Device Architecture 1.1 §1.3): the M-SEARCH request and its unicast
//! answers, parsed with `httparse` within fixed bounds.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::http::{HttpError, HttpUrl, MAX_HEADERS};

/// The SSDP multicast group and port, 239.255.255.250:1900.
pub const MULTICAST: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 255, 250)), 1900);
/// Largest SSDP answer accepted.
pub const MAX_DATAGRAM_LEN: usize = 2048;

/// The search targets sent, one M-SEARCH each: the IGD device types v1 and v2.
pub const SEARCH_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
];

/// Why a datagram is not a usable SSDP answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SsdpError {
    /// Over [`MAX_DATAGRAM_LEN`].
    #[error("SSDP answer over {MAX_DATAGRAM_LEN} bytes")]
    TooLarge,
    /// Not a complete HTTP/1.x response head.
    #[error("not an SSDP answer: {0}")]
    Malformed(&'static str),
    /// A status other than 200.
    #[error("SSDP answer with status {0}")]
    Status(u16),
    /// No `ST` naming one of [`SEARCH_TARGETS`] (or a WAN connection service).
    #[error("SSDP answer for another search target")]
    OtherTarget,
    /// No `LOCATION`, or one this client cannot use.
    #[error("SSDP answer without a usable LOCATION: {0}")]
    Location(HttpError),
}

/// A parsed SSDP answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SearchResponse {
    /// The device description's URL.
    pub location: HttpUrl,
    /// The search target answered.
    pub st: String,
}

/// One M-SEARCH for `st`, waiting at most `mx` seconds for answers (1–5).
pub fn m_search(st: &str, mx: u8) -> Vec<u8> {
    let mut s = String::new();
    let _ = write!(
        s,
        "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: {}\r\nST: {}\r\n\r\n",
        mx.clamp(1, 5),
        st
    );
    s.into_bytes()
}

/// Parse an answer to an M-SEARCH.
///
/// ```
/// use ip2p::upnp::ssdp::parse_response;
/// let d = b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
///           LOCATION: http://10.0.1.1:5000/rootDesc.xml\r\nUSN: uuid:x\r\n\r\n";
/// assert_eq!(parse_response(d).unwrap().location.path, "/rootDesc.xml");
/// ```
pub fn parse_response(bytes: &[u8]) -> Result<SearchResponse, SsdpError> {
    if bytes.len() > MAX_DATAGRAM_LEN {
        return Err(SsdpError::TooLarge);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(SsdpError::Malformed("incomplete head")),
        Err(_) => return Err(SsdpError::Malformed("bad head")),
    }
    match resp.code {
        Some(200) => {}
        Some(c) => return Err(SsdpError::Status(c)),
        None => return Err(SsdpError::Malformed("no status")),
    }
    let mut location = None;
    let mut st = None;
    for h in resp.headers.iter() {
        let Ok(v) = core::str::from_utf8(h.value) else {
            continue;
        };
        if h.name.eq_ignore_ascii_case("location") {
            location = Some(v.trim());
        } else if h.name.eq_ignore_ascii_case("st") {
            st = Some(v.trim());
        }
    }
    let st = st.ok_or(SsdpError::OtherTarget)?;
    let wanted = SEARCH_TARGETS.contains(&st)
        || st.starts_with("urn:schemas-upnp-org:service:WANIPConnection:")
        || st.starts_with("urn:schemas-upnp-org:service:WANPPPConnection:");
    if !wanted {
        return Err(SsdpError::OtherTarget);
    }
    let location = location.ok_or(SsdpError::Location(HttpError::BadUrl("missing")))?;
    let location = HttpUrl::parse(location).map_err(SsdpError::Location)?;
    Ok(SearchResponse {
        location,
        st: String::from(st),
    })
}
