//! The XML part of the IGD client, with `quick-xml`: the device description (which WAN
//! connection service, and its control URL) and SOAP requests, answers and faults.
//!
//! Bounds: documents arrive already capped by [`super::http::MAX_BODY_LEN`]; nesting deeper than
//! [`MAX_DEPTH`] is rejected; a text field longer than [`MAX_TEXT_LEN`] is rejected; at most
//! [`MAX_SERVICES`] services and [`MAX_FIELDS`] SOAP fields are looked at. A document type
//! declaration is rejected outright, so no entity is ever defined, let alone expanded; only the
//! five predefined entities and character references are decoded.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// Longest text content accepted in a field.
pub const MAX_TEXT_LEN: usize = 1024;
/// Most `<service>` elements examined in a description.
pub const MAX_SERVICES: usize = 64;
/// Most leaf fields kept from a SOAP answer.
pub const MAX_FIELDS: usize = 16;

/// Why a document was refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum XmlError {
    /// Not UTF-8.
    #[error("document is not UTF-8")]
    NotUtf8,
    /// Not well-formed (quick-xml's reason, shortened).
    #[error("malformed XML")]
    Malformed,
    /// A `<!DOCTYPE …>`: refused so that no entity can be declared.
    #[error("document type declarations are refused")]
    Doctype,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A text field longer than [`MAX_TEXT_LEN`], or too many services or fields.
    #[error("text field or element count over its bound")]
    TooLarge,
    /// An entity other than the five predefined ones and character references.
    #[error("unknown entity reference")]
    Entity,
}

/// The WAN connection service a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ServiceType {
    /// `urn:schemas-upnp-org:service:WANIPConnection:1`
    WanIp1,
    /// `urn:schemas-upnp-org:service:WANIPConnection:2`
    WanIp2,
    /// `urn:schemas-upnp-org:service:WANPPPConnection:1` (same port-mapping actions)
    WanPpp1,
}

impl ServiceType {
    /// The service type URN.
    pub fn urn(self) -> &'static str {
        match self {
            ServiceType::WanIp1 => "urn:schemas-upnp-org:service:WANIPConnection:1",
            ServiceType::WanIp2 => "urn:schemas-upnp-org:service:WANIPConnection:2",
            ServiceType::WanPpp1 => "urn:schemas-upnp-org:service:WANPPPConnection:1",
        }
    }

    fn from_urn(s: &str) -> Option<ServiceType> {
        [
            ServiceType::WanIp2,
            ServiceType::WanIp1,
            ServiceType::WanPpp1,
        ]
        .into_iter()
        .find(|t| t.urn() == s)
    }

    /// Preference when a device offers several (lower is better).
    fn rank(self) -> u8 {
        match self {
            ServiceType::WanIp2 => 0,
            ServiceType::WanIp1 => 1,
            ServiceType::WanPpp1 => 2,
        }
    }
}

/// What the client needs from a device description.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Description {
    /// `URLBase`, if the document has one (UDA 1.0; 1.1 devices resolve against the location).
    pub url_base: Option<String>,
    /// The WAN connection service chosen.
    pub service: ServiceType,
    /// Its `controlURL` as written (resolve it with [`super::http::HttpUrl::join`]).
    pub control_url: String,
}

/// One step of [`walk`]: `path` holds the local names of the enclosing elements.
enum Visit<'a> {
    /// Non-empty text content.
    Text(&'a str),
    /// The innermost element of `path` is about to close.
    End,
}

/// Walk a document, calling `f(path, visit)` for every text content and element end.
fn walk(
    doc: &[u8],
    mut f: impl FnMut(&[String], Visit<'_>) -> Result<(), XmlError>,
) -> Result<(), XmlError> {
    let s = core::str::from_utf8(doc).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(s);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    loop {
        match reader.read_event().map_err(|_| XmlError::Malformed)? {
            XmlEvent::Start(e) => {
                if path.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let name = core::str::from_utf8(e.local_name().into_inner())
                    .map_err(|_| XmlError::NotUtf8)?;
                if name.len() > MAX_TEXT_LEN {
                    return Err(XmlError::TooLarge);
                }
                path.push(String::from(name));
            }
            XmlEvent::End(_) => {
                f(&path, Visit::End)?;
                path.pop();
            }
            XmlEvent::Text(t) => {
                if t.len() > MAX_TEXT_LEN {
                    return Err(XmlError::TooLarge);
                }
                let v: Cow<'_, str> = t.unescape().map_err(|_| XmlError::Entity)?;
                if !path.is_empty() {
                    f(&path, Visit::Text(&v))?;
                }
            }
            XmlEvent::CData(c) => {
                if c.len() > MAX_TEXT_LEN {
                    return Err(XmlError::TooLarge);
                }
                let v = core::str::from_utf8(&c).map_err(|_| XmlError::NotUtf8)?;
                if !path.is_empty() {
                    f(&path, Visit::Text(v))?;
                }
            }
            XmlEvent::DocType(_) => return Err(XmlError::Doctype),
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if path.is_empty() {
        Ok(())
    } else {
        Err(XmlError::Malformed)
    }
}

/// Find the WAN connection service in a device description.
///
/// `Ok(None)`: a well-formed description without any WANIPConnection or WANPPPConnection.
///
/// ```
/// use ip2p::upnp::xml::{parse_description, ServiceType};
/// let d = br#"<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>
///   <deviceList><device><deviceList><device><serviceList><service>
///   <serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
///   <controlURL>/ctl/IPConn</controlURL></service></serviceList></device></deviceList>
///   </device></deviceList></device></root>"#;
/// let desc = parse_description(d).unwrap().unwrap();
/// assert_eq!((desc.service, desc.control_url.as_str()), (ServiceType::WanIp1, "/ctl/IPConn"));
/// ```
pub fn parse_description(doc: &[u8]) -> Result<Option<Description>, XmlError> {
    let mut url_base = None;
    let mut services = 0usize;
    let mut cur_type: Option<String> = None;
    let mut cur_ctl: Option<String> = None;
    let mut best: Option<(ServiceType, String)> = None;
    walk(doc, |path, visit| {
        let v = match visit {
            Visit::Text(v) => v,
            Visit::End => {
                if path.last().map(String::as_str) == Some("service") {
                    services += 1;
                    if services > MAX_SERVICES {
                        return Err(XmlError::TooLarge);
                    }
                    let t = cur_type.take();
                    let c = cur_ctl.take();
                    if let (Some(t), Some(c)) = (t, c) {
                        if let Some(st) = ServiceType::from_urn(&t) {
                            if best.as_ref().map_or(true, |(b, _)| st.rank() < b.rank()) {
                                best = Some((st, c));
                            }
                        }
                    }
                }
                return Ok(());
            }
        };
        {
            let last = path.last().map(String::as_str);
            let parent = path
                .len()
                .checked_sub(2)
                .and_then(|i| path.get(i))
                .map(String::as_str);
            match (parent, last) {
                (Some("root"), Some("URLBase")) if path.len() == 2 => {
                    url_base = Some(String::from(v))
                }
                (Some("service"), Some("serviceType")) => cur_type = Some(String::from(v)),
                (Some("service"), Some("controlURL")) => cur_ctl = Some(String::from(v)),
                _ => {}
            }
            Ok(())
        }
    })?;
    Ok(best.map(|(service, control_url)| Description {
        url_base,
        service,
        control_url,
    }))
}

/// Append `s` with `&`, `<`, `>`, `"` and `'` escaped.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
}

/// The SOAP envelope for `action` of `service` with `args` (values escaped here).
pub fn soap_body(service: ServiceType, action: &str, args: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(400);
    s.push_str("<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>");
    let _ = write!(s, "<u:{action} xmlns:u=\"{}\">", service.urn());
    for (name, value) in args {
        let _ = write!(s, "<{name}>");
        escape_into(&mut s, value);
        let _ = write!(s, "</{name}>");
    }
    let _ = write!(s, "</u:{action}></s:Body></s:Envelope>\r\n");
    s
}

/// The leaf fields of a SOAP answer or fault: (local name, text), at most [`MAX_FIELDS`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SoapFields(pub Vec<(String, String)>);

impl SoapFields {
    /// The text of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `UPnPError` in a fault: (errorCode, errorDescription).
    pub fn upnp_error(&self) -> Option<(u16, String)> {
        let code = self.get("errorCode")?.trim().parse().ok()?;
        Some((
            code,
            String::from(self.get("errorDescription").unwrap_or("")),
        ))
    }
}

/// Parse a SOAP answer or fault body into its leaf fields (inside `Body`).
pub fn parse_soap(doc: &[u8]) -> Result<SoapFields, XmlError> {
    let mut fields = SoapFields::default();
    walk(doc, |path, visit| {
        if let Visit::Text(v) = visit {
            if !path.iter().any(|p| p == "Body") {
                return Ok(());
            }
            if fields.0.len() >= MAX_FIELDS {
                return Err(XmlError::TooLarge);
            }
            if let Some(name) = path.last() {
                fields.0.push((name.clone(), String::from(v)));
            }
        }
        Ok(())
    })?;
    Ok(fields)
}
