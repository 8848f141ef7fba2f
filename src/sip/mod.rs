//! SIP messages (RFC 3261) for SAMP: a strict, bounded parser for one datagram and a canonical
//! encoder, with the headers SAMP's roles need typed and every other header kept in order.
//!
//! This is the message layer only: no transactions, no dialogs, no registrar. It builds
//! `no_std` with `alloc`. See `spec/sip.md` for why it is hand-written rather
//! than taken from a SIP crate, and for what it accepts and rejects.
//!
//! ```
//! use ip2p::sip::{parse, encode, Message, Method, Response};
//!
//! let register = b"REGISTER sip:example.com SIP/2.0\r\n\
//! v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK74bf9\r\n\
//! Max-Forwards: 70\r\n\
//! f: \"Alice\" <sip:alice@example.com>;tag=9fxced76sl\r\n\
//! t: <sip:alice@example.com>\r\n\
//! i: 3848276298220188511@10.0.0.1\r\n\
//! CSeq: 1 REGISTER\r\n\
//! m: <sip:alice@10.0.0.1:5060>\r\n\
//! Expires: 3600\r\n\
//! User-Agent: softphone/1.0\r\n\
//! l: 0\r\n\r\n";
//! let Ok(Message::Request(req)) = parse(register) else { panic!("a REGISTER") };
//! assert_eq!(req.method, Method::Register);
//! assert_eq!(req.headers.vias[0].branch.as_deref(), Some("z9hG4bK74bf9"));
//! assert_eq!(req.headers.other, [("User-Agent".into(), "softphone/1.0".into())]);
//!
//! let ok = Response::to(&req, 200, "OK").with_to_tag("a6c85cf");
//! let bytes = encode(&Message::Response(ok.clone()));
//! assert!(bytes.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK74bf9\r\n"));
//! assert_eq!(parse(&bytes), Ok(Message::Response(ok)));
//! ```

mod wire;

pub use wire::{encode, encode_into, parse, parse_with};

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Bounds on what [`parse_with`] accepts; [`parse`] uses [`Limits::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest datagram, head and body together (default 64 KiB, the most UDP carries).
    pub max_message: usize,
    /// Most header fields after unfolding (default 128).
    pub max_headers: usize,
    /// Most `Via` values, counted across every `Via` header (default 32).
    pub max_vias: usize,
    /// Longest line: the start line, one physical line, or one unfolded header (default 8 KiB).
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
            max_headers: 128,
            max_vias: 32,
            max_line: 8 * 1024,
        }
    }
}

/// Why bytes are not an acceptable SIP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SipError {
    /// The datagram is longer than [`Limits::max_message`].
    #[error("SIP message longer than the limit")]
    TooLarge,
    /// A line is longer than [`Limits::max_line`].
    #[error("SIP line longer than the limit")]
    LineTooLong,
    /// More header fields than [`Limits::max_headers`].
    #[error("more SIP header fields than the limit")]
    TooManyHeaders,
    /// More `Via` values than [`Limits::max_vias`].
    #[error("more Via values than the limit")]
    TooManyVias,
    /// The head is not UTF-8 text.
    #[error("SIP head is not UTF-8")]
    NotUtf8,
    /// No empty line ends the head.
    #[error("SIP head not terminated by an empty line")]
    NoEndOfHead,
    /// The first line is neither `METHOD uri SIP/2.0` nor `SIP/2.0 code reason`.
    #[error("malformed SIP start line")]
    BadStartLine,
    /// The protocol version is not `SIP/2.0`.
    #[error("SIP version is not 2.0")]
    BadVersion,
    /// A status code outside 100–699.
    #[error("SIP status code outside 100-699")]
    BadStatus,
    /// The Request-URI is not a well-formed `sip:` or `sips:` URI.
    #[error("malformed Request-URI")]
    BadUri,
    /// A header line without a colon or with a name that is not a token.
    #[error("malformed SIP header line")]
    BadHeaderLine,
    /// A header this layer types has a malformed value (named in its long form).
    #[error("malformed {name} header")]
    BadHeader {
        /// The header's name, e.g. `"Contact"`.
        name: &'static str,
    },
    /// A header that may appear once appears twice.
    #[error("{0} header appears more than once")]
    DuplicateHeader(&'static str),
    /// A header every request and response must carry is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// `Content-Length` is not a number, differs between copies, or promises more bytes than
    /// the datagram holds.
    #[error("bad Content-Length")]
    BadContentLength,
    /// `CSeq` is not `number METHOD` with a number below 2^31.
    #[error("malformed CSeq header")]
    BadCSeq,
    /// The `CSeq` method of a request is not its request method.
    #[error("CSeq method differs from the request method")]
    MethodMismatch,
}

/// A SIP request method. Methods are case-sensitive tokens; an unknown one is kept as `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `REGISTER`: bind an address-of-record to contacts.
    Register,
    /// `INVITE`: set up a session.
    Invite,
    /// `ACK`: confirm a final response to an INVITE.
    Ack,
    /// `BYE`: end a session.
    Bye,
    /// `OPTIONS`: ask for capabilities.
    Options,
    /// `CANCEL`: cancel a pending request.
    Cancel,
    /// Any other method token (e.g. `SUBSCRIBE`, or `register`, which is not `REGISTER`).
    Other(String),
}

impl Method {
    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Options => "OPTIONS",
            Method::Cancel => "CANCEL",
            Method::Other(s) => s,
        }
    }

    /// Parse a method token; `None` when `s` is not a token.
    pub fn parse(s: &str) -> Option<Method> {
        if !wire::is_token(s) {
            return None;
        }
        Some(match s {
            "REGISTER" => Method::Register,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "OPTIONS" => Method::Options,
            "CANCEL" => Method::Cancel,
            _ => Method::Other(String::from(s)),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter `;name` or `;name=value`. Names and values are kept as sent (a quoted value keeps
/// its quotes, an escaped one its `%HH`), so re-encoding writes them back unchanged.
pub type Param = (String, Option<String>);

/// A `sip:` or `sips:` URI: `sip:user@host:port;params?headers`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part (with `:password` if present), escapes kept as sent.
    pub user: Option<String>,
    /// The host: a name, an IPv4 address, or a bracketed IPv6 reference `[::1]`.
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (`transport`, `lr`, `maddr` …), in order.
    pub params: Vec<Param>,
    /// The raw `?header=value&…` part without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    /// A URI with a host only: `sip:host` (an owned `String` is taken without a copy).
    pub fn new(host: impl Into<String>) -> SipUri {
        SipUri {
            secure: false,
            user: None,
            host: host.into(),
            port: None,
            params: Vec::new(),
            headers: None,
        }
    }

    /// Parse a `sip:`/`sips:` URI (scheme case-insensitive).
    ///
    /// ```
    /// let u = ip2p::sip::SipUri::parse("sip:alice@10.0.0.1:5070;transport=udp").unwrap();
    /// assert_eq!((u.user.as_deref(), u.host.as_str(), u.port), (Some("alice"), "10.0.0.1", Some(5070)));
    /// ```
    pub fn parse(s: &str) -> Result<SipUri, SipError> {
        wire::parse_uri(s).ok_or(SipError::BadUri)
    }

    /// The value of the first parameter named `name` (case-insensitive); `Some(None)` for a
    /// parameter without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// An address in `From`, `To` or `Contact`: `"Display Name" <uri>;params`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped; `None` when absent.
    pub display: Option<String>,
    /// The address.
    pub uri: SipUri,
    /// Header parameters after the address (`tag`, `expires`, `q` …), in order.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// An address without display name or parameters.
    pub fn new(uri: SipUri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    /// Parse one name-addr or addr-spec (`<sip:a@b>;tag=1`, `sip:a@b;tag=1`, `"A" <sip:a@b>`).
    /// In the bare form, parameters after the URI are header parameters (RFC 3261 §20).
    pub fn parse(s: &str) -> Option<NameAddr> {
        wire::parse_name_addr(s)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").flatten()
    }

    /// Set (or replace) the `tag` parameter.
    pub fn set_tag(&mut self, tag: impl Into<String>) {
        self.params.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        self.params.push((String::from("tag"), Some(tag.into())));
    }

    /// The value of the first header parameter named `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            f.write_str("\"")?;
            for c in d.chars() {
                if c == '"' || c == '\\' || (c.is_ascii_control() && c != '\t') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// One `Via` value: `SIP/2.0/UDP host:port;branch=z9hG4bK…;params`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Via {
    /// The transport (`UDP`, `TCP`, `TLS` …) as sent.
    pub transport: String,
    /// The sent-by host (name, IPv4, or bracketed IPv6).
    pub host: String,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// The `branch` parameter (the transaction id; `z9hG4bK…` from RFC 3261 agents).
    pub branch: Option<String>,
    /// Every other parameter (`received`, `rport`, `maddr`, `ttl` …), in order.
    pub params: Vec<Param>,
}

impl Via {
    /// A `SIP/2.0/UDP` Via for `host:port` with a branch (owned `String`s are taken without a
    /// copy).
    pub fn udp(host: impl Into<String>, port: Option<u16>, branch: impl Into<String>) -> Via {
        Via {
            transport: String::from("UDP"),
            host: host.into(),
            port,
            branch: Some(branch.into()),
            params: Vec::new(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(b) = &self.branch {
            write!(f, ";branch={b}")?;
        }
        write_params(f, &self.params)
    }
}

/// `CSeq: 1 REGISTER`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CSeq {
    /// The sequence number (below 2^31).
    pub seq: u32,
    /// The method it counts.
    pub method: Method,
}

/// The `Contact` header: `*` (remove every binding, only in a REGISTER with `Expires: 0`) or a
/// list of addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Contact {
    /// `Contact: *`.
    Star,
    /// One or more addresses, from one or more `Contact` headers, in order.
    Addrs(Vec<NameAddr>),
}

/// The headers of a message: those SAMP uses typed, every other one kept as `(name, value)`.
///
/// [`parse`] guarantees at least one Via and that `from`, `to`, `call_id` and `cseq` are set.
/// [`encode`] writes the fields as they are: build values with the `parse` functions of the
/// types (or from a parsed message) so that what is written parses again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    /// `Via` values, topmost first.
    pub vias: Vec<Via>,
    /// `From`.
    pub from: Option<NameAddr>,
    /// `To`.
    pub to: Option<NameAddr>,
    /// `Call-ID`.
    pub call_id: Option<String>,
    /// `CSeq`.
    pub cseq: Option<CSeq>,
    /// `Contact`.
    pub contact: Option<Contact>,
    /// `Expires` in seconds.
    pub expires: Option<u32>,
    /// `Max-Forwards`.
    pub max_forwards: Option<u8>,
    /// Every other header, in the order received, name as sent (a compact name stays compact),
    /// value with folding replaced by one space and outer whitespace trimmed.
    pub other: Vec<(String, String)>,
}

impl Headers {
    /// The values of the other headers named `name` (case-insensitive), in order.
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.other
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: SipUri,
    /// The headers.
    pub headers: Headers,
    /// The body (`Content-Length` octets; the rest of the datagram when absent).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body; add them with the `with_*` setters.
    pub fn new(method: Method, uri: SipUri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Push a Via (it becomes the bottom-most one).
    pub fn with_via(mut self, via: Via) -> Self {
        self.headers.vias.push(via);
        self
    }

    /// Set `From`.
    pub fn with_from(mut self, from: NameAddr) -> Self {
        self.headers.from = Some(from);
        self
    }

    /// Set `To`.
    pub fn with_to(mut self, to: NameAddr) -> Self {
        self.headers.to = Some(to);
        self
    }

    /// Set `Call-ID`.
    pub fn with_call_id(mut self, call_id: impl Into<String>) -> Self {
        self.headers.call_id = Some(call_id.into());
        self
    }

    /// Set `CSeq` to `seq` and this request's method.
    pub fn with_cseq(mut self, seq: u32) -> Self {
        self.headers.cseq = Some(CSeq {
            seq,
            method: self.method.clone(),
        });
        self
    }

    /// Set `Contact`.
    pub fn with_contact(mut self, contact: Contact) -> Self {
        self.headers.contact = Some(contact);
        self
    }

    /// Set `Expires`.
    pub fn with_expires(mut self, secs: u32) -> Self {
        self.headers.expires = Some(secs);
        self
    }

    /// Set `Max-Forwards`.
    pub fn with_max_forwards(mut self, hops: u8) -> Self {
        self.headers.max_forwards = Some(hops);
        self
    }

    /// Append another header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .other
            .push((String::from(name), String::from(value)));
        self
    }

    /// Set the body (`Content-Length` is written from it).
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    /// The status code, 100–699.
    pub code: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The response to `req` with `code` and `reason`, copying what RFC 3261 §8.2.6.2 says a
    /// response copies: every Via in order, From, To, Call-ID and CSeq. Add the To tag a UAS
    /// must add (except to a 100) with [`Response::with_to_tag`].
    pub fn to(req: &Request, code: u16, reason: &str) -> Response {
        Response {
            code,
            reason: String::from(reason),
            headers: Headers {
                vias: req.headers.vias.clone(),
                from: req.headers.from.clone(),
                to: req.headers.to.clone(),
                call_id: req.headers.call_id.clone(),
                cseq: req.headers.cseq.clone(),
                ..Headers::default()
            },
            body: Vec::new(),
        }
    }

    /// [`Response::to`] for a request the caller is done with: its Vias, From, To, Call-ID and
    /// CSeq move into the response instead of being copied.
    pub fn answering(req: Request, code: u16, reason: &str) -> Response {
        let h = req.headers;
        Response {
            code,
            reason: String::from(reason),
            headers: Headers {
                vias: h.vias,
                from: h.from,
                to: h.to,
                call_id: h.call_id,
                cseq: h.cseq,
                ..Headers::default()
            },
            body: Vec::new(),
        }
    }

    /// Set the `tag` of `To` unless it already has one (a request inside a dialog does).
    pub fn with_to_tag(mut self, tag: impl Into<String>) -> Self {
        if let Some(to) = &mut self.headers.to {
            if to.tag().is_none() {
                to.set_tag(tag);
            }
        }
        self
    }

    /// Set `Contact`.
    pub fn with_contact(mut self, contact: Contact) -> Self {
        self.headers.contact = Some(contact);
        self
    }

    /// Set `Expires`.
    pub fn with_expires(mut self, secs: u32) -> Self {
        self.headers.expires = Some(secs);
        self
    }

    /// Append another header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .other
            .push((String::from(name), String::from(value)));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The body of either kind.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for (n, v) in params {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}
