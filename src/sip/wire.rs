//! The datagram parser and the canonical encoder.
//!
//! One pass over the bytes, line by line, no recursion; every allocation is a copy of part of
//! the input, so memory stays proportional to the datagram, which [`Limits::max_message`] bounds.

use super::{
    CSeq, Contact, Headers, Limits, Message, Method, NameAddr, Param, Request, Response, SipError,
    SipUri, Via,
};
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// Parse one SIP message carried in a datagram, with [`Limits::default`].
///
/// The body is `Content-Length` octets (bytes after them are ignored, as RFC 3261 §18.3 says for
/// UDP); without `Content-Length` it is the rest of the datagram.
pub fn parse(data: &[u8]) -> Result<Message, SipError> {
    parse_with(data, &Limits::default())
}

/// Parse one SIP message carried in a datagram, within `limits`.
pub fn parse_with(data: &[u8], limits: &Limits) -> Result<Message, SipError> {
    if data.len() > limits.max_message {
        return Err(SipError::TooLarge);
    }
    let mut pos = 0;
    // Agents send bare CRLFs as keep-alives; ignore any before the start line (RFC 3261 §7.5).
    while data.get(pos..pos + 2) == Some(b"\r\n") {
        pos += 2;
    }
    let start = next_line(data, &mut pos, limits)?.ok_or(SipError::BadStartLine)?;
    let mut builder = HeadBuilder::default();
    // the header being unfolded: (name, value)
    // (borrowed from the datagram; owned only once a fold continues it)
    let mut current: Option<(&str, Cow<'_, str>)> = None;
    let mut count = 0usize;
    loop {
        let line = next_line(data, &mut pos, limits)?;
        let Some(line) = line else {
            if let Some((n, v)) = current.take() {
                builder.add(n, &v, limits)?;
            }
            break;
        };
        if line.starts_with([' ', '\t']) {
            let Some((_, v)) = current.as_mut() else {
                return Err(SipError::BadHeaderLine);
            };
            let v = v.to_mut();
            v.push(' ');
            v.push_str(line.trim_matches(is_ws));
            if v.len() > limits.max_line {
                return Err(SipError::LineTooLong);
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            builder.add(n, &v, limits)?;
        }
        count += 1;
        if count > limits.max_headers {
            return Err(SipError::TooManyHeaders);
        }
        let (name, value) = split_byte(line, b':').ok_or(SipError::BadHeaderLine)?;
        let name = name.trim_end_matches(is_ws);
        if !is_token(name) {
            return Err(SipError::BadHeaderLine);
        }
        current = Some((name, Cow::Borrowed(value.trim_start_matches(is_ws))));
    }
    let head = builder.finish()?;
    let rest = data.get(pos..).unwrap_or(&[]);
    let body = match builder.content_length {
        Some(n) => rest.get(..n).ok_or(SipError::BadContentLength)?,
        None => rest,
    }
    .to_vec();
    if start
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("SIP/"))
    {
        let mut parts = start.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(SipError::BadVersion);
        }
        let code = parts.next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SipError::BadStatus);
        }
        let code: u16 = code.parse().map_err(|_| SipError::BadStatus)?;
        if !(100..=699).contains(&code) {
            return Err(SipError::BadStatus);
        }
        let reason = String::from(parts.next().unwrap_or(""));
        Ok(Message::Response(Response {
            code,
            reason,
            headers: head,
            body,
        }))
    } else {
        let mut parts = start.splitn(3, ' ');
        let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SipError::BadStartLine);
        };
        let method = Method::parse(method).ok_or(SipError::BadStartLine)?;
        if uri.is_empty() {
            return Err(SipError::BadStartLine);
        }
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(SipError::BadVersion);
        }
        let uri = parse_uri(uri).ok_or(SipError::BadUri)?;
        if head.cseq.as_ref().map(|c| &c.method) != Some(&method) {
            return Err(SipError::MethodMismatch);
        }
        Ok(Message::Request(Request {
            method,
            uri,
            headers: head,
            body,
        }))
    }
}

/// The next line of the head without its line end (CRLF, or a bare LF from lax agents);
/// `Ok(None)` for the empty line that ends the head.
fn next_line<'a>(
    data: &'a [u8],
    pos: &mut usize,
    limits: &Limits,
) -> Result<Option<&'a str>, SipError> {
    let rest = data.get(*pos..).unwrap_or(&[]);
    let Some(nl) = memchr::memchr(b'\n', rest) else {
        return Err(if rest.len() > limits.max_line {
            SipError::LineTooLong
        } else {
            SipError::NoEndOfHead
        });
    };
    let raw = &rest[..nl];
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.len() > limits.max_line {
        return Err(SipError::LineTooLong);
    }
    *pos += nl + 1;
    if raw.is_empty() {
        return Ok(None);
    }
    // A head is text: no control characters but HT (a stray CR would let one message encode
    // into a different one). One pass without early exit (so the compiler can vectorise it)
    // finds C0 controls and DEL, and whether any byte is non-ASCII; only then are the chars
    // decoded, for the C1 controls.
    let (c0, non_ascii) = raw.iter().fold((false, false), |(c, n), &b| {
        (
            c | ((b < 0x20) & (b != b'\t')) | (b == 0x7f),
            n | (b >= 0x80),
        )
    });
    let line = core::str::from_utf8(raw).map_err(|_| SipError::NotUtf8)?;
    let control = c0 || (non_ascii && line.chars().any(|c| c.is_control() && c != '\t'));
    if control {
        return Err(SipError::BadHeaderLine);
    }
    Ok(Some(line))
}

#[derive(Default)]
struct HeadBuilder {
    head: Headers,
    content_length: Option<usize>,
}

impl HeadBuilder {
    fn add(&mut self, name: &str, value: &str, limits: &Limits) -> Result<(), SipError> {
        // both ends: a header whose first line is empty starts with the space of its fold
        let value = value.trim_matches(is_ws);
        let h = &mut self.head;
        let Some(canon) = canonical(name) else {
            h.other.push((String::from(name), String::from(value)));
            return Ok(());
        };
        let bad = SipError::BadHeader { name: canon };
        match canon {
            "Via" => {
                for v in split_commas(value) {
                    h.vias.push(parse_via(v).ok_or(bad.clone())?);
                    if h.vias.len() > limits.max_vias {
                        return Err(SipError::TooManyVias);
                    }
                }
            }
            "From" | "To" => {
                let slot = if canon == "From" {
                    &mut h.from
                } else {
                    &mut h.to
                };
                if slot.is_some() {
                    return Err(SipError::DuplicateHeader(canon));
                }
                *slot = Some(parse_name_addr(value).ok_or(bad)?);
            }
            "Call-ID" => {
                if h.call_id.is_some() {
                    return Err(SipError::DuplicateHeader(canon));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad);
                }
                h.call_id = Some(String::from(value));
            }
            "CSeq" => {
                if h.cseq.is_some() {
                    return Err(SipError::DuplicateHeader(canon));
                }
                h.cseq = Some(parse_cseq(value).ok_or(SipError::BadCSeq)?);
            }
            "Contact" => {
                for v in split_commas(value) {
                    let v = v.trim_matches(is_ws);
                    match (&mut h.contact, v == "*") {
                        (None, true) => h.contact = Some(Contact::Star),
                        (None, false) => {
                            h.contact = Some(Contact::Addrs(alloc::vec![
                                parse_name_addr(v).ok_or(bad.clone())?
                            ]))
                        }
                        (Some(Contact::Addrs(list)), false) => {
                            list.push(parse_name_addr(v).ok_or(bad.clone())?)
                        }
                        // `*` is allowed only alone
                        (Some(_), _) => return Err(bad),
                    }
                }
            }
            "Expires" => {
                if h.expires.is_some() {
                    return Err(SipError::DuplicateHeader(canon));
                }
                h.expires = Some(parse_digits(value, 10).ok_or(bad)?);
            }
            "Max-Forwards" => {
                if h.max_forwards.is_some() {
                    return Err(SipError::DuplicateHeader(canon));
                }
                let n = parse_digits(value, 3).ok_or(bad.clone())?;
                h.max_forwards = Some(u8::try_from(n).map_err(|_| bad)?);
            }
            _ => {
                // Content-Length: copies must agree
                let n = parse_digits(value, 10).ok_or(SipError::BadContentLength)?;
                let n = usize::try_from(n).map_err(|_| SipError::BadContentLength)?;
                if self.content_length.is_some_and(|m| m != n) {
                    return Err(SipError::BadContentLength);
                }
                self.content_length = Some(n);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Headers, SipError> {
        let h = core::mem::take(&mut self.head);
        if h.vias.is_empty() {
            return Err(SipError::MissingHeader("Via"));
        }
        if h.from.is_none() {
            return Err(SipError::MissingHeader("From"));
        }
        if h.to.is_none() {
            return Err(SipError::MissingHeader("To"));
        }
        if h.call_id.is_none() {
            return Err(SipError::MissingHeader("Call-ID"));
        }
        if h.cseq.is_none() {
            return Err(SipError::MissingHeader("CSeq"));
        }
        Ok(h)
    }
}

/// The long name of a header this layer types, from its long or compact name (any case).
fn canonical(name: &str) -> Option<&'static str> {
    const NAMES: [(&str, &str, &str); 9] = [
        ("Via", "v", "Via"),
        ("From", "f", "From"),
        ("To", "t", "To"),
        ("Call-ID", "i", "Call-ID"),
        ("CSeq", "", "CSeq"),
        ("Contact", "m", "Contact"),
        ("Expires", "", "Expires"),
        ("Max-Forwards", "", "Max-Forwards"),
        ("Content-Length", "l", "Content-Length"),
    ];
    NAMES
        .iter()
        .find(|(long, short, _)| {
            name.eq_ignore_ascii_case(long)
                || (!short.is_empty() && name.eq_ignore_ascii_case(short))
        })
        .map(|(_, _, c)| *c)
}

/// Where the ASCII byte `b` first occurs in `s`. A header's fields are short, and a plain byte
/// scan beats `str::find`'s searcher on them; the index is a char boundary, `b` being ASCII.
fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|x| x == b)
}

/// `s` split around the first ASCII byte `b` ([`str::split_once`] by byte).
fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// An RFC 3261 token: `alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"`.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

fn is_unreserved(b: u8) -> bool {
    UNRESERVED_BYTES[usize::from(b)]
}

/// Byte classes as tables (one load per byte instead of a scan of the extra characters).
static TOKEN_BYTES: [bool; 256] = byte_class(b"-.!%*_+`'~");
static UNRESERVED_BYTES: [bool; 256] = byte_class(b"-_.!~*'()");

/// ASCII letters and digits, and `extra`.
const fn byte_class(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

/// Every byte is unreserved, in `extra`, or part of a `%HH` escape.
fn chars_ok(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if is_unreserved(b[i]) || extra.contains(&b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Decimal digits only, at most `max_digits` of them.
fn parse_digits(s: &str, max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Split at commas outside quoted strings and `<…>` (an iterator: no list is allocated).
fn split_commas(s: &str) -> SplitCommas<'_> {
    SplitCommas {
        s,
        start: 0,
        done: false,
    }
}

struct SplitCommas<'a> {
    s: &'a str,
    start: usize,
    done: bool,
}

impl<'a> Iterator for SplitCommas<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let s = self.s;
        // each piece starts outside quotes and angle brackets
        let (mut quoted, mut angle, mut escaped) = (false, false, false);
        for (i, b) in s.bytes().enumerate().skip(self.start) {
            if quoted {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => quoted = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => quoted = true,
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    let piece = &s[self.start..i];
                    self.start = i + 1;
                    return Some(piece);
                }
                _ => {}
            }
        }
        self.done = true;
        Some(&s[self.start..])
    }
}

/// Length of the quoted string at the start of `s` (which starts with `"`), quotes included.
fn quoted_len(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Header parameters: `*( SWS ";" SWS name [ SWS "=" SWS ( token / host / quoted-string ) ] )`.
fn parse_params(mut s: &str) -> Option<Vec<Param>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(is_ws);
        if s.is_empty() {
            return Some(out);
        }
        s = s.strip_prefix(';')?.trim_start_matches(is_ws);
        let end = s
            .find(|c: char| c == '=' || c == ';' || is_ws(c))
            .unwrap_or(s.len());
        let name = &s[..end];
        if !is_token(name) {
            return None;
        }
        s = s[end..].trim_start_matches(is_ws);
        let value = match s.strip_prefix('=') {
            None => None,
            Some(r) => {
                let r = r.trim_start_matches(is_ws);
                let n = if r.starts_with('"') {
                    quoted_len(r)?
                } else {
                    let n = r.find(|c: char| c == ';' || is_ws(c)).unwrap_or(r.len());
                    let v = &r[..n];
                    if v.is_empty() || !v.bytes().all(|b| is_token_byte(b) || b"[]:".contains(&b)) {
                        return None;
                    }
                    n
                };
                s = &r[n..];
                Some(String::from(&r[..n]))
            }
        };
        out.push((String::from(name), value));
    }
}

/// `host [":" port]` with host a name, an IPv4 address or a bracketed IPv6 reference.
fn parse_hostport(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let close = find_byte(s, b']')?;
        let inner = &s[1..close];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let rest = &s[close + 1..];
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':')?),
        };
        (&s[..=close], port)
    } else {
        let (h, p) = match split_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        (h, p)
    };
    let port = match port {
        None => None,
        Some(p) => Some(u16::try_from(parse_digits(p, 5)?).ok()?),
    };
    Some((String::from(host), port))
}

pub(super) fn parse_uri(s: &str) -> Option<SipUri> {
    let (secure, rest) = if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:")) {
        (false, &s[4..])
    } else if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:")) {
        (true, &s[5..])
    } else {
        return None;
    };
    // `?` and `;` may appear in the user part, `@` nowhere else: split at the first `@` first.
    let (user, rest) = match split_byte(rest, b'@') {
        Some((u, r)) => {
            if u.is_empty() || !chars_ok(u, b"&=+$,;?/:") {
                return None;
            }
            (Some(String::from(u)), r)
        }
        None => (None, rest),
    };
    let (rest, headers) = match split_byte(rest, b'?') {
        Some((r, h)) => {
            if h.is_empty() || !chars_ok(h, b"[]/?:+$&=") {
                return None;
            }
            (r, Some(String::from(h)))
        }
        None => (rest, None),
    };
    let (hostport, params) = match split_byte(rest, b';') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let (host, port) = parse_hostport(hostport)?;
    let mut list = Vec::new();
    if let Some(p) = params {
        for part in p.split(';') {
            let (n, v) = match split_byte(part, b'=') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            let ok = |x: &str| !x.is_empty() && chars_ok(x, b"[]/:&+$");
            if !ok(n) || v.is_some_and(|v| !ok(v)) {
                return None;
            }
            list.push((String::from(n), v.map(String::from)));
        }
    }
    Some(SipUri {
        secure,
        user,
        host,
        port,
        params: list,
        headers,
    })
}

pub(super) fn parse_name_addr(s: &str) -> Option<NameAddr> {
    let s = s.trim_matches(is_ws);
    let (display, rest) = if s.starts_with('"') {
        let n = quoted_len(s)?;
        let mut d = String::new();
        let mut escaped = false;
        for c in s[1..n - 1].chars() {
            if !escaped && c == '\\' {
                escaped = true;
            } else {
                escaped = false;
                d.push(c);
            }
        }
        (Some(d), s[n..].trim_start_matches(is_ws))
    } else if let Some(i) = find_byte(s, b'<') {
        let words: Vec<&str> = s[..i].split(is_ws).filter(|w| !w.is_empty()).collect();
        if !words.iter().all(|w| is_token(w)) {
            return None;
        }
        let d = (!words.is_empty()).then(|| words.join(" "));
        (d, &s[i..])
    } else {
        // addr-spec: the URI ends at the first `;`, what follows are header parameters
        let end = find_byte(s, b';').unwrap_or(s.len());
        let uri = parse_uri(s[..end].trim_end_matches(is_ws))?;
        return Some(NameAddr {
            display: None,
            uri,
            params: parse_params(&s[end..])?,
        });
    };
    let rest = rest.strip_prefix('<')?;
    let close = find_byte(rest, b'>')?;
    Some(NameAddr {
        display,
        uri: parse_uri(&rest[..close])?,
        params: parse_params(&rest[close + 1..])?,
    })
}

fn parse_via(s: &str) -> Option<Via> {
    let s = s.trim_matches(is_ws);
    let (proto, rest) = split_byte(s, b'/')?;
    let (version, rest) = split_byte(rest, b'/')?;
    if !proto.trim_matches(is_ws).eq_ignore_ascii_case("SIP")
        || version.trim_matches(is_ws) != "2.0"
    {
        return None;
    }
    let rest = rest.trim_start_matches(is_ws);
    let t_end = rest.find(is_ws)?;
    let transport = &rest[..t_end];
    if !is_token(transport) {
        return None;
    }
    let rest = rest[t_end..].trim_start_matches(is_ws);
    let end = find_byte(rest, b';').unwrap_or(rest.len());
    let (host, port) = parse_hostport(rest[..end].trim_end_matches(is_ws))?;
    let mut branch = None;
    let mut params = Vec::new();
    for (n, v) in parse_params(&rest[end..])? {
        if branch.is_none() && v.is_some() && n.eq_ignore_ascii_case("branch") {
            branch = v;
        } else {
            params.push((n, v));
        }
    }
    Some(Via {
        transport: String::from(transport),
        host,
        port,
        branch,
        params,
    })
}

fn parse_cseq(s: &str) -> Option<CSeq> {
    let mut parts = s.split(is_ws).filter(|p| !p.is_empty());
    let (Some(n), Some(m), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let seq = parse_digits(n, 10)?;
    if seq >= 1 << 31 {
        return None;
    }
    Some(CSeq {
        seq,
        method: Method::parse(m)?,
    })
}

/// Encode a message in canonical form: `CRLF` line ends, long header names, one `Via` per
/// line, Via/From/To/Call-ID/CSeq/Contact/Expires/Max-Forwards first, then every other header in
/// its order, then `Content-Length` (always written, from the body's length), then the body.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(msg, &mut out);
    out
}

/// [`encode`], appending to `out` (a host reusing one buffer saves an allocation and a copy).
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) {
    let body = match msg {
        Message::Request(r) => &r.body,
        Message::Response(r) => &r.body,
    };
    if out.is_empty() {
        // write the text head straight into `out`'s allocation (empty bytes are UTF-8)
        let mut s = String::from_utf8(core::mem::take(out)).unwrap_or_default();
        s.reserve(512 + body.len());
        write_head(msg, &mut s);
        *out = s.into_bytes();
    } else {
        let mut s = String::with_capacity(512);
        write_head(msg, &mut s);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(body);
}

/// Everything but the body, up to and including the empty line.
fn write_head(msg: &Message, s: &mut String) {
    let (h, body) = match msg {
        Message::Request(r) => {
            let _ = write!(s, "{} {} SIP/2.0\r\n", r.method, r.uri);
            (&r.headers, &r.body)
        }
        Message::Response(r) => {
            let _ = write!(s, "SIP/2.0 {:03} {}\r\n", r.code, r.reason);
            (&r.headers, &r.body)
        }
    };
    for v in &h.vias {
        let _ = write!(s, "Via: {v}\r\n");
    }
    if let Some(f) = &h.from {
        let _ = write!(s, "From: {f}\r\n");
    }
    if let Some(t) = &h.to {
        let _ = write!(s, "To: {t}\r\n");
    }
    if let Some(c) = &h.call_id {
        let _ = write!(s, "Call-ID: {c}\r\n");
    }
    if let Some(c) = &h.cseq {
        let _ = write!(s, "CSeq: {} {}\r\n", c.seq, c.method);
    }
    match &h.contact {
        None => {}
        Some(Contact::Star) => s.push_str("Contact: *\r\n"),
        Some(Contact::Addrs(list)) if !list.is_empty() => {
            s.push_str("Contact: ");
            for (i, a) in list.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "{a}");
            }
            s.push_str("\r\n");
        }
        Some(Contact::Addrs(_)) => {}
    }
    if let Some(e) = h.expires {
        let _ = write!(s, "Expires: {e}\r\n");
    }
    if let Some(m) = h.max_forwards {
        let _ = write!(s, "Max-Forwards: {m}\r\n");
    }
    for (n, v) in &h.other {
        let _ = write!(s, "{n}: {v}\r\n");
    }
    let _ = write!(s, "Content-Length: {}\r\n\r\n", body.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tables_match_their_definitions() {
        for b in 0..=255u8 {
            let alnum = b.is_ascii_alphanumeric();
            assert_eq!(is_token_byte(b), alnum || b"-.!%*_+`'~".contains(&b));
            assert_eq!(is_unreserved(b), alnum || b"-_.!~*'()".contains(&b));
        }
    }

    #[test]
    fn commas_respect_quotes_and_angles() {
        assert_eq!(
            split_commas(r#""a,\"b" <sip:x@y;p=1,2>;q=1, <sip:z>"#).collect::<Vec<_>>(),
            [r#""a,\"b" <sip:x@y;p=1,2>;q=1"#, " <sip:z>"]
        );
    }

    #[test]
    fn uri_forms() {
        let u = parse_uri("sips:%61lice;p=1?/:pw@[2001:db8::1]:5061;transport=tcp;lr?h=v").unwrap();
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("%61lice;p=1?/:pw"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.len(), 2);
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(u.headers.as_deref(), Some("h=v"));
        assert_eq!(parse_uri(&u.to_string()), Some(u));
        for bad in [
            "tel:+1234",
            "sip:",
            "sip:a@",
            "sip:@h",
            "sip:h:",
            "sip:h:99999",
            "sip:h;",
            "sip:a%4@h",
            "sip:a b@h",
            "sip:[zz]",
            "sip:h?",
            "sip:\u{e9}@h",
        ] {
            assert_eq!(parse_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let a = parse_name_addr(r#" "Bob \"B\"" <sip:bob@h>;tag=1 ; expires = 60 "#).unwrap();
        assert_eq!(a.display.as_deref(), Some(r#"Bob "B""#));
        assert_eq!(a.tag(), Some("1"));
        assert_eq!(a.param("expires"), Some(Some("60")));
        assert_eq!(parse_name_addr(&a.to_string()), Some(a));
        let b = parse_name_addr("Bob  Smith <sip:bob@h>").unwrap();
        assert_eq!(b.display.as_deref(), Some("Bob Smith"));
        let c = parse_name_addr("sip:bob@h;tag=x").unwrap();
        assert_eq!((c.uri.params.len(), c.tag()), (0, Some("x")));
        assert_eq!(
            parse_name_addr(r#"<sip:a@h>;+sip.instance="<urn:uuid:1;2>""#)
                .unwrap()
                .param("+sip.instance"),
            Some(Some(r#""<urn:uuid:1;2>""#))
        );
        for bad in [
            "",
            "<sip:a@h",
            "\"open <sip:a@h>",
            "Bob@ <sip:a@h>",
            "<sip:a@h> junk",
            "<sip:a@h>;",
            "<sip:a@h>;t=\"x",
        ] {
            assert_eq!(parse_name_addr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn via_forms() {
        let v = parse_via(
            " SIP / 2.0 / UDP  h.example.com:5060 ; received=10.0.0.1;branch=z9hG4bKx;rport",
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!((v.host.as_str(), v.port), ("h.example.com", Some(5060)));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKx"));
        assert_eq!(v.params.len(), 2);
        assert_eq!(parse_via(&v.to_string()), Some(v));
        for bad in [
            "SIP/2.0/UDP",
            "SIP/3.0/UDP h",
            "SIP/2.0/UDP h:x",
            "SIP/2.0/U@P h",
            "SIP/2.0/UDP h;branch=",
        ] {
            assert_eq!(parse_via(bad), None, "{bad}");
        }
    }

    #[test]
    fn cseq_forms() {
        assert_eq!(
            parse_cseq("4711  INVITE"),
            Some(CSeq {
                seq: 4711,
                method: Method::Invite
            })
        );
        for bad in [
            "",
            "1",
            "INVITE",
            "-1 INVITE",
            "2147483648 INVITE",
            "1 IN VITE",
            "1 I@",
        ] {
            assert_eq!(parse_cseq(bad), None, "{bad}");
        }
    }

    #[test]
    fn fold_after_an_empty_first_line() {
        // found by the fuzzer: the value was " b", which encodes as "b"
        let m = parse(b"OPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:h>\r\nt: <sip:h>\r\ni: c\r\nCSeq: 1 OPTIONS\r\nX:\r\n b\r\n\r\n").unwrap();
        assert_eq!(m.headers().other, [("X".into(), "b".into())]);
    }

    #[test]
    fn compact_and_long_names() {
        assert_eq!(canonical("V"), Some("Via"));
        assert_eq!(canonical("call-id"), Some("Call-ID"));
        assert_eq!(canonical("l"), Some("Content-Length"));
        assert_eq!(canonical("c"), None);
        assert_eq!(canonical(""), None);
    }
}
