//! A fault-injecting HTTP proxy on loopback, in front of the S3 emulator: the tool is pointed at
//! it (AWS_ENDPOINT_URL) and meets 503 SlowDown answers, connections dropped halfway through a
//! response, responses that stall, and errors after the request was carried out.
//!
//! Each request is forwarded on a fresh upstream connection (`Connection: close`) and the whole
//! answer read before the fault decides how much of it the client gets.
//!
//! [`FaultProxy::record`] also keeps every request's method, target and headers, for tests that
//! judge what the tool sends (tests/it/infra.rs: the bucket policy against the real requests).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Everything passes.
    Clean,
    /// Every `every`-th request is answered 503 SlowDown without reaching S3.
    SlowDown { every: usize },
    /// Every `every`-th GET that has a body gets its headers and half its body, then the
    /// connection closes.
    DropGetBody { every: usize },
    /// Every `every`-th PUT or POST reaches S3, then the connection closes with no answer.
    DropWriteAnswer { every: usize },
    /// The first and then every `every`-th CreateMultipartUpload reaches S3 (which opens an
    /// upload), then the connection closes with no answer, so the retry opens a second one.
    DropCreateUploadAnswer { every: usize },
    /// Every `every`-th GET sends headers and half its body, then nothing for `pause`.
    StallGetBody { every: usize, pause: Duration },
    /// CompleteMultipartUpload reaches S3, then the client is told 500 InternalError.
    CompleteThen500,
    /// UploadPart succeeds `after` times, then every part is refused with 500 for good.
    PartsFailAfter { after: usize },
    /// PUT and POST succeed `after` times, then every one is refused with 500 for good.
    WritesFailAfter { after: usize },
    /// Every PUT whose path holds `containing` waits `pause` before it is forwarded (an upload
    /// still on its way when the job stops).
    HoldWrites {
        containing: &'static str,
        pause: Duration,
    },
    /// One request in `one_in` gets one of the transient faults above, chosen at random.
    Mixed { one_in: u32, seed: u64 },
}

/// One request as it reached the proxy (recorded only after [`FaultProxy::record`]).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent: `/bucket/key?partNumber=1&uploadId=…` (path-style).
    pub target: String,
    /// Header names lowercased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub faults: AtomicUsize,
}

pub struct FaultProxy {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    regions: Arc<Mutex<Vec<(String, String)>>>,
    recorded: Arc<Mutex<Option<Vec<Recorded>>>>,
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstream: String,
    mode: Arc<Mutex<Mode>>,
    /// Buckets answered as S3 answers a bucket in another region: requests signed for any
    /// other region get 301 PermanentRedirect (which the SDK does not follow), except
    /// GetBucketLocation, which every region answers.
    regions: Arc<Mutex<Vec<(String, String)>>>,
    /// `Some` once recording is on: every request from then on, faulted or not.
    recorded: Arc<Mutex<Option<Vec<Recorded>>>>,
    counts: Arc<Counts>,
    gets: AtomicUsize,
    writes: AtomicUsize,
    parts: AtomicUsize,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
}

impl FaultProxy {
    /// Starts a proxy in front of AWS_ENDPOINT_URL (the emulator).
    pub async fn start(mode: Mode) -> FaultProxy {
        let upstream = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL (the emulator) is set by scripts/test");
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seed = match mode {
            Mode::Mixed { seed, .. } => seed,
            _ => 0,
        };
        let mode = Arc::new(Mutex::new(mode));
        let regions = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::new(Mutex::new(None));
        let counts = Arc::new(Counts::default());
        let shared = Arc::new(Shared {
            upstream,
            mode: mode.clone(),
            regions: regions.clone(),
            recorded: recorded.clone(),
            counts: counts.clone(),
            gets: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            parts: AtomicUsize::new(0),
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
        });
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, shared).await;
                });
            }
        });
        FaultProxy {
            url,
            mode,
            regions,
            recorded,
            counts,
            task,
        }
    }

    /// From now on `bucket` behaves as a bucket in `region` does (see [`Shared::regions`]).
    pub fn place_bucket(&self, bucket: &str, region: &str) {
        self.regions
            .lock()
            .expect("regions")
            .push((bucket.to_string(), region.to_string()));
    }

    /// From now on every request is recorded (see [`FaultProxy::recorded`]).
    pub fn record(&self) {
        self.recorded
            .lock()
            .expect("recorded")
            .get_or_insert_with(Vec::new);
    }

    /// The requests recorded since the last call, oldest first; recording goes on.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded
            .lock()
            .expect("recorded")
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    pub fn faults(&self) -> usize {
        self.counts.faults.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }
}

struct Request {
    head: Vec<u8>,
    method: String,
    target: String,
    body: Vec<u8>,
}

/// What the client gets for one request.
enum Action {
    Forward,
    SlowDown,
    ForwardThenDrop,
    HalfBodyThenClose,
    HalfBodyThenStall(Duration),
    ForwardThen500,
    Refuse500,
    HoldThenForward(Duration),
}

async fn serve(mut client: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut pending = Vec::new();
    loop {
        let Some(request) = read_request(&mut client, &mut pending).await? else {
            return Ok(());
        };
        shared.counts.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(recorded) = shared.recorded.lock().expect("recorded").as_mut() {
            recorded.push(record_of(&request));
        }
        if let Some(region) = wrong_region(&shared, &request) {
            let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Region>{region}</Region></Error>");
            let head = format!(
                "HTTP/1.1 301 Moved Permanently\r\nContent-Type: application/xml\r\nx-amz-bucket-region: {region}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            client.write_all(head.as_bytes()).await?;
            client.write_all(body.as_bytes()).await?;
            client.flush().await?;
            continue;
        }
        let action = decide(&shared, &request);
        if !matches!(action, Action::Forward) {
            shared.counts.faults.fetch_add(1, Ordering::SeqCst);
        }
        match action {
            Action::SlowDown => {
                let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                write_answer(&mut client, 503, "Slow Down", body).await?;
                continue;
            }
            Action::Refuse500 => {
                let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
                write_answer(&mut client, 500, "Internal Server Error", body).await?;
                continue;
            }
            Action::HoldThenForward(pause) => tokio::time::sleep(pause).await,
            _ => {}
        }
        let answer = forward(&shared.upstream, &request).await?;
        let (head, body) = split_answer(&answer);
        // Bodies are cut only in successful answers: an error's XML is read whole.
        let action = match action {
            Action::HalfBodyThenClose | Action::HalfBodyThenStall(_)
                if !head.starts_with(b"HTTP/1.1 2") && !head.starts_with(b"HTTP/1.0 2") =>
            {
                Action::Forward
            }
            other => other,
        };
        match action {
            Action::ForwardThenDrop => return Ok(()),
            Action::ForwardThen500 => {
                let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
                write_answer(&mut client, 500, "Internal Server Error", body).await?;
            }
            Action::HalfBodyThenClose | Action::HalfBodyThenStall(_) => {
                client.write_all(&keep_alive_head(head)).await?;
                client.write_all(&body[..body.len() / 2]).await?;
                client.flush().await?;
                if let Action::HalfBodyThenStall(pause) = action {
                    tokio::time::sleep(pause).await;
                }
                return Ok(());
            }
            _ => {
                client.write_all(&keep_alive_head(head)).await?;
                client.write_all(body).await?;
                client.flush().await?;
            }
        }
    }
}

fn record_of(request: &Request) -> Recorded {
    let text = String::from_utf8_lossy(&request.head);
    let headers = text
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Recorded {
        method: request.method.clone(),
        target: request.target.clone(),
        headers,
    }
}

/// The region a placed bucket is in, when this request for it was signed for another one.
fn wrong_region(shared: &Shared, request: &Request) -> Option<String> {
    let bucket = request.target.trim_start_matches('/');
    let bucket = bucket.split(['/', '?']).next().unwrap_or_default();
    let region = shared
        .regions
        .lock()
        .expect("regions")
        .iter()
        .find(|(placed, _)| placed == bucket)
        .map(|(_, region)| region.clone())?;
    if request.target.contains("?location") {
        return None;
    }
    let head = String::from_utf8_lossy(&request.head).to_ascii_lowercase();
    let signed_for = head
        .lines()
        .find(|line| line.starts_with("authorization:"))
        .and_then(|line| line.split("credential=").nth(1))
        .and_then(|credential| credential.split('/').nth(2))
        .unwrap_or_default()
        .to_string();
    (signed_for != region).then_some(region)
}

fn decide(shared: &Shared, request: &Request) -> Action {
    let mode = *shared.mode.lock().expect("mode");
    let is_get = request.method == "GET" && !request.target.contains("?list-type");
    let is_write = request.method == "PUT" || request.method == "POST";
    let is_part = request.method == "PUT" && request.target.contains("partNumber=");
    let is_complete = request.method == "POST" && request.target.contains("uploadId=");
    let is_create_upload = request.method == "POST" && request.target.contains("?uploads");
    let nth = |counter: &AtomicUsize, every: usize| {
        (counter.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(every.max(1))
    };
    match mode {
        Mode::Clean => Action::Forward,
        Mode::SlowDown { every } => {
            if (shared.counts.requests.load(Ordering::SeqCst)).is_multiple_of(every.max(1)) {
                Action::SlowDown
            } else {
                Action::Forward
            }
        }
        Mode::DropGetBody { every } if is_get => {
            if nth(&shared.gets, every) {
                Action::HalfBodyThenClose
            } else {
                Action::Forward
            }
        }
        Mode::StallGetBody { every, pause } if is_get => {
            if nth(&shared.gets, every) {
                Action::HalfBodyThenStall(pause)
            } else {
                Action::Forward
            }
        }
        Mode::DropWriteAnswer { every } if is_write => {
            if nth(&shared.writes, every) {
                Action::ForwardThenDrop
            } else {
                Action::Forward
            }
        }
        Mode::DropCreateUploadAnswer { every } if is_create_upload => {
            if shared
                .writes
                .fetch_add(1, Ordering::SeqCst)
                .is_multiple_of(every.max(1))
            {
                Action::ForwardThenDrop
            } else {
                Action::Forward
            }
        }
        Mode::CompleteThen500 if is_complete => Action::ForwardThen500,
        Mode::PartsFailAfter { after } if is_part => {
            if shared.parts.fetch_add(1, Ordering::SeqCst) >= after {
                Action::Refuse500
            } else {
                Action::Forward
            }
        }
        Mode::WritesFailAfter { after } if is_write => {
            if shared.writes.fetch_add(1, Ordering::SeqCst) >= after {
                Action::Refuse500
            } else {
                Action::Forward
            }
        }
        Mode::HoldWrites { containing, pause }
            if request.method == "PUT" && request.target.contains(containing) =>
        {
            Action::HoldThenForward(pause)
        }
        Mode::Mixed { one_in, .. } => {
            let mut rng = shared.rng.lock().expect("rng");
            if rng.random_range(0..one_in.max(1)) != 0 {
                return Action::Forward;
            }
            match rng.random_range(0..4) {
                0 => Action::SlowDown,
                1 if is_get => Action::HalfBodyThenClose,
                2 if is_get => Action::HalfBodyThenStall(Duration::from_secs(3)),
                _ if is_write => Action::ForwardThenDrop,
                _ => Action::SlowDown,
            }
        }
        _ => Action::Forward,
    }
}

async fn write_answer(
    client: &mut TcpStream,
    status: u16,
    reason: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await?;
    client.write_all(body).await?;
    client.flush().await
}

/// Reads one request (head and body) from the client; `None` when it closed the connection.
async fn read_request(
    client: &mut TcpStream,
    pending: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(at) = find(pending, b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 64 * 1024];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<u8> = pending.drain(..head_end).collect();
    let text = String::from_utf8_lossy(&head).to_string();
    let mut first = text.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let header = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        // Kept encoded: forwarded as it came.
        loop {
            if let Some(end) = chunked_end(pending) {
                body = pending.drain(..end).collect();
                break;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            pending.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while pending.len() < length {
            let mut chunk = vec![0u8; 256 * 1024];
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            pending.extend_from_slice(&chunk[..n]);
        }
        body = pending.drain(..length).collect();
    }
    Ok(Some(Request {
        head,
        method,
        target,
        body,
    }))
}

/// Where a chunked body ends in `bytes`, if it is all there.
fn chunked_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + find(&bytes[at..], b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            let end = at + find(&bytes[at..], b"\r\n")?;
            if end == at {
                return Some(at + 2);
            }
            let rest = find(&bytes[at..], b"\r\n\r\n")?;
            return Some(at + rest + 4);
        }
        at += size + 2;
        if at > bytes.len() {
            return None;
        }
    }
}

/// Sends the request to the emulator on a new connection and reads the whole answer.
async fn forward(upstream: &str, request: &Request) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    let text = String::from_utf8_lossy(&request.head).to_string();
    let mut head = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    server.write_all(head.as_bytes()).await?;
    server.write_all(&request.body).await?;
    server.flush().await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    Ok(answer)
}

fn split_answer(answer: &[u8]) -> (&[u8], &[u8]) {
    match find(answer, b"\r\n\r\n") {
        Some(at) => answer.split_at(at + 4),
        None => (answer, &[]),
    }
}

/// The emulator's answer head without its `Connection: close`, so the client keeps using the
/// connection as it would with S3 (answers here always carry their length).
fn keep_alive_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let framed = text.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("content-length:") || l.starts_with("transfer-encoding:")
    });
    if !framed {
        return head.to_vec();
    }
    let mut out = String::new();
    for line in text.split("\r\n") {
        if line
            .split(':')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    // `split` left one empty line too many at the end.
    out.truncate(out.len() - 2);
    out.into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
