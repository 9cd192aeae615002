//! Integration tests: the official Rust SDK against a Tarn server running in-process on port 0.

mod kinesis_sdk;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_kinesis::Client;
use tarn_api::{ApiConfig, AppState};
use tarn_streams::{Streams, StreamsConfig, system_clock};

pub const ACCESS_KEY: &str = "it-key";
pub const SECRET_KEY: &str = "it-secret";

/// A server on a free port with its own data directory; stops when dropped.
pub struct TestServer {
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap()).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> TestServer {
        let streams = Streams::open(dir.path(), StreamsConfig::default(), system_clock()).unwrap();
        let config = ApiConfig {
            credentials: Some(HashMap::from([(ACCESS_KEY.to_string(), SECRET_KEY.to_string())])),
            ..ApiConfig::default()
        };
        let segments = Arc::new(tarn_segments::Segments::open(dir.path()).unwrap());
        let state = AppState::new(Arc::new(streams), config, Default::default(), segments);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tarn_api::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestServer { endpoint, dir, stop: Some(stop), task: Some(task) }
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        self.shutdown().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        TestServer::start_in(dir).await
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn client(&self) -> Client {
        let credentials = aws_credential_types::Credentials::from_keys(ACCESS_KEY, SECRET_KEY, None);
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Client::from_conf(config)
    }
}
