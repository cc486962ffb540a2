//! Security properties not covered by `secrets.rs` and `client_http.rs` (which check tokens in
//! logs, `Debug` and errors, credentials across origins and the redirect limit):
//!
//! * TLS certificates are verified by default: a server with a self-signed certificate is
//!   refused, and only a client the user built with verification turned off connects to it.
//! * A redirect from `https` to `http` (another origin) does not carry the token.
//! * Redirects to schemes other than `http` and `https` are refused.
//!
//! The TLS server is tokio-rustls on 127.0.0.1 with a self-signed test certificate for
//! `127.0.0.1` (generated once for these tests; its key protects nothing).

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wot_sse::{EventStream, ReconnectPolicy, SseClient};
use wot_testkit::{AbortOnDrop, read_request_head, serve_connections};

/// A self-signed certificate for CN=localhost, IP 127.0.0.1 (DER, hex).
const CERT_DER_HEX: &[&str] = &[
    "3082019b30820141a0030201020214371445d2efef5b425ad5ccbccb56e7b7a77dd3f6300a06082a8648ce3d04030230",
    "143112301006035504030c096c6f63616c686f73743020170d3236313132373030313131335a180f3231323631313033",
    "3030313131335a30143112301006035504030c096c6f63616c686f73743059301306072a8648ce3d020106082a8648ce",
    "3d0301070342000472fbeab12cb0e9f87335f40dcb30eff9259b99b49925669c50b2c62642523f31341b48978abd9100",
    "c36a932560e3ea497d9bf48db957a2c25e718b7f5723645ba36f306d301d0603551d0e04160414208f3922c7329d3825",
    "4876ac13819535f51471a0301f0603551d23041830168014208f3922c7329d38254876ac13819535f51471a0300f0603",
    "551d130101ff040530030101ff301a0603551d110413301187047f00000182096c6f63616c686f7374300a06082a8648",
    "ce3d0403020348003045022100acf7237abe12d84b2d0a13b2dfe435972faefaae0f4779913813f7635b30a91e022031",
    "873e2586b536c033519964e22ef1103fe03757509851d8c99433597881eafe",
];
const KEY_DER_HEX: &[&str] = &[
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b020101042071f575e3d858f426d52a5c77",
    "e6d12cc0a982a54fd025f6337420da22643e6c44a1440342000472fbeab12cb0e9f87335f40dcb30eff9259b99b49925",
    "669c50b2c62642523f31341b48978abd9100c36a932560e3ea497d9bf48db957a2c25e718b7f5723645b",
];
fn unhex(parts: &[&str]) -> Vec<u8> {
    let hex: String = parts.concat();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

struct Server {
    addr: SocketAddr,
    /// Request heads, lower-cased.
    requests: Arc<Mutex<Vec<String>>>,
    _task: AbortOnDrop,
}

/// Reads one request head, records it and writes `response`, then waits for the client to go.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    response: String,
    requests: &Mutex<Vec<String>>,
) {
    let Some(head) = read_request_head(&mut socket).await else {
        return;
    };
    requests
        .lock()
        .unwrap()
        .push(head.as_str().to_ascii_lowercase());
    if socket.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = socket.flush().await;
    let mut buf = [0u8; 1024];
    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// A server on 127.0.0.1, plain or TLS, answering every connection with `response`.
async fn serve(tls: bool, response: String) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let acceptor = tls.then(|| {
        let provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
        let config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(unhex(CERT_DER_HEX))],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(unhex(KEY_DER_HEX))),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    });
    let log = requests.clone();
    let task = serve_connections(listener, move |_, socket| {
        let (requests, response, acceptor) = (log.clone(), response.clone(), acceptor.clone());
        async move {
            match acceptor {
                // A client that rejects the certificate ends the handshake here.
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(socket).await {
                        answer(tls, response, &requests).await;
                    }
                }
                None => answer(socket, response, &requests).await,
            }
        }
    });
    Server {
        addr,
        requests,
        _task: task,
    }
}

fn stream_response(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}")
}

fn redirect(location: &str) -> String {
    format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\
         connection: close\r\n\r\n"
    )
}

fn policy() -> ReconnectPolicy {
    ReconnectPolicy::new()
        .initial_delay(Duration::from_millis(10))
        .max_attempts(Some(2))
        .seed(1)
}

/// A client whose `reqwest::Client` the user built without certificate checks: the only way
/// to reach a server with a self-signed certificate.
fn insecure_client() -> SseClient {
    let insecure = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    SseClient::builder()
        .http_client(insecure)
        .reconnect(policy())
        .build()
        .unwrap()
}

async fn first(stream: &mut EventStream) -> Option<Result<wot_sse::Event, wot_sse::Error>> {
    timeout(Duration::from_secs(30), stream.next())
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_certificates_are_verified_by_default() {
    let server = serve(true, stream_response("data: over tls\n\n")).await;
    let url = format!("https://127.0.0.1:{}/events", server.addr.port());

    // The default client refuses the self-signed certificate: each attempt is a connect
    // error, and the stream gives up after its attempts.
    let client = SseClient::builder().reconnect(policy()).build().unwrap();
    let mut stream = client.get(&url).connect().unwrap();
    let error = first(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_connect(), "{error}");
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        chain.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    let last = first(&mut stream).await.unwrap().unwrap_err();
    assert!(last.is_retries_exhausted(), "{last}");
    assert!(
        server.requests.lock().unwrap().is_empty(),
        "no request crossed the TLS handshake"
    );

    // Only a client the user explicitly built without verification reaches the server,
    // which shows that the refusal above was the certificate check.
    let mut stream = insecure_client().get(&url).connect().unwrap();
    let event = first(&mut stream).await.unwrap().unwrap();
    assert_eq!(event.data(), "over tls");
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_redirect_from_https_to_http_does_not_carry_the_token() {
    const TOKEN: &str = "tok-downgrade-44e1";
    let plain = serve(false, stream_response("data: downgraded\n\n")).await;
    let secure = serve(
        true,
        redirect(&format!("http://127.0.0.1:{}/plain", plain.addr.port())),
    )
    .await;
    let mut stream = insecure_client()
        .get(format!("https://127.0.0.1:{}/events", secure.addr.port()))
        .bearer_token(TOKEN)
        .connect()
        .unwrap();
    let event = first(&mut stream).await.unwrap().unwrap();
    assert_eq!(event.data(), "downgraded");
    let sent = secure.requests.lock().unwrap().clone();
    assert!(
        sent[0].contains(&format!("authorization: bearer {TOKEN}")),
        "{sent:?}"
    );
    let downgraded = plain.requests.lock().unwrap().clone();
    assert!(downgraded[0].starts_with("get /plain "), "{downgraded:?}");
    assert!(!downgraded[0].contains("authorization"), "{downgraded:?}");
    assert!(
        !downgraded[0].contains(&TOKEN.to_lowercase()),
        "{downgraded:?}"
    );
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_refused() {
    for location in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
    ] {
        let server = serve(false, redirect(location)).await;
        let mut stream = SseClient::builder()
            .reconnect(policy())
            .build()
            .unwrap()
            .get(format!("http://{}/events", server.addr))
            .connect()
            .unwrap();
        let error = first(&mut stream).await.unwrap().unwrap_err();
        assert!(
            error.is_redirect() && error.is_terminal(),
            "{location}: {error}"
        );
        assert!(first(&mut stream).await.is_none());
        assert_eq!(server.requests.lock().unwrap().len(), 1);
    }
}
