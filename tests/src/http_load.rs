//! A small HTTP/1.1 load generator for the node benchmarks: N keep-alive connections, each
//! sending one request at a time as fast as answers come back, for a fixed duration. It speaks
//! just enough HTTP for rhizomed's answers (status line, Content-Length bodies), so the client
//! costs little CPU next to the server on a 2-core machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest response header block the client accepts.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Makes the bytes of request number `seq` on connection `conn`.
pub type RequestMaker = Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>;
/// Checks the body of a 2xx answer.
pub type BodyCheck = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// What a load run measured.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Answers with status 200..300 that `accept` took.
    pub ok: u64,
    /// Other answers.
    pub failed: u64,
    /// Connection errors.
    pub io_errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Per-request latencies of accepted answers, in microseconds (sorted).
    pub latencies_us: Vec<u64>,
}

impl LoadReport {
    /// Accepted answers per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency percentile in microseconds.
    pub fn percentile_us(&self, fraction: f64) -> u64 {
        percentile(&self.latencies_us, fraction)
    }
}

/// The `fraction` percentile of sorted `values` (0 if empty).
pub fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `connections` keep-alive connections against `address` for `duration`. `request`
/// makes the bytes of request number `seq` on connection `conn`; `accept` checks a 2xx body.
pub async fn run(
    address: SocketAddr,
    connections: usize,
    duration: Duration,
    request: RequestMaker,
    accept: BodyCheck,
) -> LoadReport {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let (request, accept) = (request.clone(), accept.clone());
        tasks.push(tokio::spawn(async move { connection(address, conn, deadline, request, accept).await }));
    }
    let mut report = LoadReport::default();
    for task in tasks {
        if let Ok(part) = task.await {
            report.ok += part.ok;
            report.failed += part.failed;
            report.io_errors += part.io_errors;
            report.latencies_us.extend(part.latencies_us);
        }
    }
    report.elapsed = started.elapsed();
    report.latencies_us.sort_unstable();
    report
}

async fn connection(
    address: SocketAddr,
    conn: usize,
    deadline: Instant,
    request: RequestMaker,
    accept: BodyCheck,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut stream = None;
    let mut buffer = Vec::with_capacity(4096);
    let mut seq = 0u64;
    while Instant::now() < deadline {
        if stream.is_none() {
            match TcpStream::connect(address).await {
                Ok(connected) => {
                    let _ = connected.set_nodelay(true);
                    stream = Some(connected);
                }
                Err(_) => {
                    report.io_errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(socket) = stream.as_mut() else { continue };
        let bytes = request(conn, seq);
        seq += 1;
        let sent = Instant::now();
        let answer = async {
            socket.write_all(&bytes).await?;
            read_response(socket, &mut buffer).await
        }
        .await;
        match answer {
            Ok((status, body)) if (200..300).contains(&status) && accept(&body) => {
                report.ok += 1;
                report.latencies_us.push(sent.elapsed().as_micros() as u64);
            }
            Ok(_) => report.failed += 1,
            Err(_) => {
                report.io_errors += 1;
                stream = None;
            }
        }
    }
    report
}

/// Reads one response: returns its status and body.
async fn read_response(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_HEADER_BYTES {
            return Err(invalid("header too long"));
        }
        let mut chunk = [0u8; 8192];
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            return Err(invalid("connection closed"));
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..header_end]).map_err(|_| invalid("header not utf-8"))?;
    let status: u16 =
        head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(|| invalid("status"))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| invalid("no content-length"))?;
    while buffer.len() < header_end + length {
        let mut chunk = [0u8; 8192];
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            return Err(invalid("connection closed mid-body"));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = buffer[header_end..header_end + length].to_vec();
    buffer.drain(..header_end + length);
    Ok((status, body))
}

/// A GET request with keep-alive.
pub fn get_request(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n").into_bytes()
}

/// A POST request with a JSON body and keep-alive.
pub fn post_json_request(path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let auth = token.map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
