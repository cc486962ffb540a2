//! Reading an HTTP/1.1 request head from a raw socket.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request head [`read_request_head`] accepts (64 KiB).
pub const MAX_HEAD: usize = 64 * 1024;

/// The head of one HTTP/1.1 request, as read from the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    text: String,
}

impl RequestHead {
    /// The head as text (invalid UTF-8 replaced), request line and headers, up to and
    /// including the blank line.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The head as an owned string.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The request path, without its query string (`""` when the request line is malformed).
    pub fn path(&self) -> &str {
        let target = self
            .text
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .unwrap_or_default();
        target.split('?').next().unwrap_or_default()
    }

    /// The value of the first header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// The `Last-Event-ID` header, if the client sent one.
    pub fn last_event_id(&self) -> Option<&str> {
        self.header("last-event-id")
    }
}

/// Reads from `socket` until the end of a request head (`\r\n\r\n`).
///
/// Returns `None` when the peer closes or fails first, or when the head grows past
/// [`MAX_HEAD`] bytes without ending. Bytes read past the blank line (a request body) are
/// kept in the returned text.
pub async fn read_request_head<S: AsyncRead + Unpin>(socket: &mut S) -> Option<RequestHead> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // Only the new bytes (and the three before them) can complete the terminator.
    let mut searched = 0;
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(buf.get(..n)?);
        if head.get(searched..)?.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        searched = head.len().saturating_sub(3);
    }
    Some(RequestHead {
        text: String::from_utf8_lossy(&head).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn reads_a_head_split_across_writes_and_parses_it() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for part in [
                "GET /events/over",
                "heat?x=1 HTTP/1.1\r\nHost: a\r\nLast-Event-",
                "ID:  42 \r\n\r",
                "\n",
            ] {
                client.write_all(part.as_bytes()).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let head = read_request_head(&mut server).await.unwrap();
        assert_eq!(head.path(), "/events/overheat");
        assert_eq!(head.last_event_id(), Some("42"));
        assert_eq!(head.header("HOST"), Some("a"));
        assert_eq!(head.header("accept"), None);
        assert!(head.as_str().ends_with("\r\n\r\n"));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn an_unfinished_or_endless_head_is_none() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        drop(client);
        assert_eq!(read_request_head(&mut server).await, None);

        let (mut client, mut server) = tokio::io::duplex(1024);
        let writer = tokio::spawn(async move {
            let line = [b'a'; 1000];
            while client.write_all(&line).await.is_ok() {}
        });
        assert_eq!(read_request_head(&mut server).await, None);
        drop(server);
        writer.await.unwrap();
    }
}
