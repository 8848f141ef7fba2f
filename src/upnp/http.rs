//! The HTTP/1.1 part of the IGD client: `http://` URLs, requests, and a bounded response reader.
//!
//! Heads are parsed with `httparse` (at most [`MAX_HEADERS`] headers, [`MAX_HEAD_LEN`] bytes);
//! bodies are framed by `Content-Length`, `Transfer-Encoding: chunked`, or the close of the
//! connection, and never grow past [`MAX_BODY_LEN`]. The reader keeps only the bytes it was given
//! plus the decoded body, so a hostile server can make it hold at most about twice
//! [`MAX_BODY_LEN`] + [`MAX_HEAD_LEN`] bytes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{IpAddr, SocketAddr};

/// Most headers accepted in a response head.
pub const MAX_HEADERS: usize = 32;
/// Largest response head accepted (status line and headers).
pub const MAX_HEAD_LEN: usize = 8 * 1024;
/// Largest response body accepted (a device description is a few kB; miniupnpd's is 3 kB).
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// Longest URL accepted (LOCATION, URLBase, controlURL).
pub const MAX_URL_LEN: usize = 512;

/// Why bytes are not an acceptable HTTP response or URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum HttpError {
    /// The head is not HTTP/1.x (httparse's reason).
    #[error("malformed HTTP head: {0}")]
    Malformed(&'static str),
    /// The head is longer than [`MAX_HEAD_LEN`] or has more than [`MAX_HEADERS`] headers.
    #[error("HTTP head over {MAX_HEAD_LEN} bytes or {MAX_HEADERS} headers")]
    HeadTooLarge,
    /// The body is (or announces itself as) longer than [`MAX_BODY_LEN`].
    #[error("HTTP body over {MAX_BODY_LEN} bytes")]
    BodyTooLarge,
    /// A bad `Content-Length` or chunk size.
    #[error("bad body framing: {0}")]
    BadFraming(&'static str),
    /// The connection closed before the response was complete.
    #[error("connection closed before the response was complete")]
    Truncated,
    /// A URL this client cannot use (only `http://` with an IP literal host).
    #[error("unusable URL: {0}")]
    BadUrl(&'static str),
}

/// An `http://` URL whose host is an IP literal, as IGDs announce them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HttpUrl {
    /// Host and port (port 80 when the URL has none).
    pub addr: SocketAddr,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parse an absolute `http://host[:port][/path]` URL; the host must be an IPv4 literal or a
    /// bracketed IPv6 literal.
    ///
    /// ```
    /// use ip2p::upnp::http::HttpUrl;
    /// let u = HttpUrl::parse("http://10.0.1.1:5000/rootDesc.xml").unwrap();
    /// assert_eq!(u.addr, "10.0.1.1:5000".parse().unwrap());
    /// assert_eq!(u.join("/ctl/IPConn").unwrap().to_string(), "http://10.0.1.1:5000/ctl/IPConn");
    /// ```
    pub fn parse(s: &str) -> Result<HttpUrl, HttpError> {
        // ASCII whitespace only: `str::trim` would also strip Unicode spaces such as U+0085,
        // which then made `parse(to_string())` differ from the first parse.
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        if s.len() > MAX_URL_LEN {
            return Err(HttpError::BadUrl("too long"));
        }
        let rest = match s.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &s[7..],
            _ => return Err(HttpError::BadUrl("not http://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(HttpError::BadUrl("user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or(HttpError::BadUrl("unclosed IPv6 literal"))?;
            (&v6[..end], v6[end + 1..].strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let ip: IpAddr = host
            .parse()
            .map_err(|_| HttpError::BadUrl("host is not an IP literal"))?;
        let port = match port {
            None | Some("") => 80,
            Some(p) => p.parse::<u16>().map_err(|_| HttpError::BadUrl("port"))?,
        };
        if port == 0 {
            return Err(HttpError::BadUrl("port 0"));
        }
        Self::checked_path(path).map(|path| HttpUrl {
            addr: SocketAddr::new(ip, port),
            path,
        })
    }

    fn checked_path(path: &str) -> Result<String, HttpError> {
        let path = path.split('#').next().unwrap_or("");
        if path.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            // A request line is ASCII (RFC 9112 §3.2); a non-ASCII path would have to be
            // percent-encoded by the IGD that sent it.
            return Err(HttpError::BadUrl(
                "control character, space or non-ASCII octet in path",
            ));
        }
        Ok(String::from(path))
    }

    /// Resolve `reference` (absolute `http://…`, absolute path `/…`, or relative path) against
    /// this URL, as a description's `controlURL` is resolved against `URLBase` or the location.
    pub fn join(&self, reference: &str) -> Result<HttpUrl, HttpError> {
        let r = reference.trim_matches(|c: char| c.is_ascii_whitespace());
        if r.len() > MAX_URL_LEN {
            return Err(HttpError::BadUrl("too long"));
        }
        if r.get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            return HttpUrl::parse(r);
        }
        if r.contains("://") {
            return Err(HttpError::BadUrl("not http://"));
        }
        let path = if r.starts_with('/') {
            String::from(r)
        } else {
            let dir = match self.path.rfind('/') {
                Some(i) => &self.path[..=i],
                None => "/",
            };
            let mut p = String::from(dir);
            p.push_str(r);
            p
        };
        if path.len() > MAX_URL_LEN {
            return Err(HttpError::BadUrl("too long"));
        }
        Ok(HttpUrl {
            addr: self.addr,
            path: Self::checked_path(&path)?,
        })
    }

    /// The `Host:` header value.
    pub fn host_header(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{}", self.addr);
        s
    }
}

impl core::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "http://{}{}", self.addr, self.path)
    }
}

/// A `GET` of `url` that asks the server to close the connection after the answer.
pub fn get_request(url: &HttpUrl) -> Vec<u8> {
    let mut s = String::new();
    let _ = write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: ip2p UPnP/1.1\r\n\r\n",
        url.path,
        url.host_header()
    );
    s.into_bytes()
}

/// A SOAP `POST` of `body` to `url` for `soap_action` (`"urn:…:service:WANIPConnection:1#AddPortMapping"`).
pub fn post_request(url: &HttpUrl, soap_action: &str, body: &str) -> Vec<u8> {
    let mut s = String::new();
    let _ = write!(
        s,
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \"{}\"\r\nContent-Length: {}\r\n\r\n{}",
        url.path,
        url.host_header(),
        soap_action,
        body.len(),
        body
    );
    s.into_bytes()
}

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
}

/// Collects a response from the bytes of a connection, in whatever pieces they arrive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResponseReader {
    buf: Vec<u8>,
    head: Option<Head>,
    /// Chunked: position in `buf` of the next chunk-size line, and the body decoded so far.
    cursor: usize,
    body: Vec<u8>,
    done: bool,
}

impl ResponseReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held (for the memory bound checks of the fuzz targets).
    pub fn held(&self) -> usize {
        self.buf.capacity() + self.body.capacity()
    }

    /// Add bytes; `Some(response)` once the response is complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        if self.done {
            return Ok(None); // anything after a complete response is ignored
        }
        let limit = MAX_HEAD_LEN + 2 * MAX_BODY_LEN;
        if self.buf.len().saturating_add(bytes.len()) > limit {
            return Err(HttpError::BodyTooLarge);
        }
        self.buf.extend_from_slice(bytes);
        if self.head.is_none() {
            // a head can only have become complete if a newline arrived
            if !bytes.contains(&b'\n') {
                if self.buf.len() > MAX_HEAD_LEN {
                    return Err(HttpError::HeadTooLarge);
                }
                return Ok(None);
            }
            match self.parse_head()? {
                Some(h) => {
                    self.head = Some(h);
                    self.cursor = h.len;
                }
                None => return Ok(None),
            }
        }
        self.progress()
    }

    /// The server closed the connection: the response if it is complete (a body framed by the
    /// close ends here).
    pub fn close(&mut self) -> Result<Response, HttpError> {
        match self.head {
            Some(Head {
                status,
                len,
                framing: Framing::UntilClose,
            }) if !self.done => {
                self.done = true;
                let body = self.buf.get(len..).unwrap_or(&[]).to_vec();
                Ok(Response { status, body })
            }
            _ => Err(HttpError::Truncated),
        }
    }

    fn parse_head(&self) -> Result<Option<Head>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return if self.buf.len() > MAX_HEAD_LEN {
                    Err(HttpError::HeadTooLarge)
                } else {
                    Ok(None)
                }
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
            Err(e) => return Err(HttpError::Malformed(error_name(e))),
        };
        if len > MAX_HEAD_LEN {
            return Err(HttpError::HeadTooLarge);
        }
        let status = resp.code.ok_or(HttpError::Malformed("no status"))?;
        let mut framing = Framing::UntilClose;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let v =
                    core::str::from_utf8(h.value).map_err(|_| HttpError::BadFraming("encoding"))?;
                if v.trim().eq_ignore_ascii_case("chunked") {
                    framing = Framing::Chunked;
                } else if !v.trim().eq_ignore_ascii_case("identity") {
                    return Err(HttpError::BadFraming("unknown transfer-encoding"));
                }
            } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
                let v = core::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or(HttpError::BadFraming("content-length"))?;
                if v > MAX_BODY_LEN {
                    return Err(HttpError::BodyTooLarge);
                }
                if let Framing::Length(prev) = framing {
                    if prev != v {
                        return Err(HttpError::BadFraming("two content-lengths"));
                    }
                }
                framing = Framing::Length(v);
            }
        }
        Ok(Some(Head {
            status,
            len,
            framing,
        }))
    }

    fn progress(&mut self) -> Result<Option<Response>, HttpError> {
        let Some(head) = self.head else {
            return Ok(None);
        };
        match head.framing {
            Framing::Length(n) => {
                let have = self.buf.len().saturating_sub(head.len);
                if have < n {
                    return Ok(None);
                }
                self.done = true;
                let body = self.buf.get(head.len..head.len + n).unwrap_or(&[]).to_vec();
                Ok(Some(Response {
                    status: head.status,
                    body,
                }))
            }
            Framing::UntilClose => {
                if self.buf.len().saturating_sub(head.len) > MAX_BODY_LEN {
                    return Err(HttpError::BodyTooLarge);
                }
                Ok(None)
            }
            Framing::Chunked => loop {
                let rest = self.buf.get(self.cursor..).unwrap_or(&[]);
                match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Partial) => {
                        if rest.len() > 1024 {
                            return Err(HttpError::BadFraming("chunk-size line"));
                        }
                        return Ok(None);
                    }
                    Err(_) => return Err(HttpError::BadFraming("chunk size")),
                    Ok(httparse::Status::Complete((used, size))) => {
                        let size = usize::try_from(size).map_err(|_| HttpError::BodyTooLarge)?;
                        if size > MAX_BODY_LEN || self.body.len() + size > MAX_BODY_LEN {
                            return Err(HttpError::BodyTooLarge);
                        }
                        if size == 0 {
                            // trailers are not needed: the body is complete
                            self.done = true;
                            return Ok(Some(Response {
                                status: head.status,
                                body: core::mem::take(&mut self.body),
                            }));
                        }
                        let start = used;
                        let end = start + size;
                        if rest.len() < end + 2 {
                            return Ok(None);
                        }
                        if rest.get(end..end + 2) != Some(b"\r\n".as_slice()) {
                            return Err(HttpError::BadFraming("chunk not followed by CRLF"));
                        }
                        self.body.extend_from_slice(&rest[start..end]);
                        self.cursor += end + 2;
                    }
                }
            },
        }
    }
}

fn error_name(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "new line",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "version",
    }
}
