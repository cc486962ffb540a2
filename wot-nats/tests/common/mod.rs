//! A nats-server with JetStream for the tests: started on a free port and a temporary
//! directory, stopped and removed when dropped.

#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The reason every test that needs nats-server is ignored by default.
pub const NEEDS_SERVER: &str =
    "needs nats-server; .ci/run installs it and runs these with --ignored";

pub struct NatsServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

/// The server binary: `$NATS_SERVER` (when it names a file), else Debian's
/// `/usr/sbin/nats-server`, else `nats-server` on the `PATH`; `None` when there is none.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        let path = PathBuf::from(path);
        return path.exists().then_some(path);
    }
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.exists() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.exists())
}

impl NatsServer {
    /// Starts a server and waits (at most 10 s) until it takes connections.
    pub fn start() -> NatsServer {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wot-nats-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let port = free_port();
        let binary = binary().expect("nats-server (install it, or set NATS_SERVER)");
        let child = Command::new(binary)
            .args(["-js", "-sd"])
            .arg(&dir)
            .args(["-p", &port.to_string(), "-a", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (install it, or set NATS_SERVER)");
        let server = NatsServer { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Kills the server now (the guard still removes its directory when dropped).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id (for reading its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A client connected to this server. (JetStream is up before the server listens.)
    pub async fn client(&self) -> wot_nats::async_nats::Client {
        wot_nats::connect(&self.url(), Duration::from_secs(5))
            .await
            .expect("connect")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
