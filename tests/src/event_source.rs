//! An SQS event-source emulator: what Lambda's event source mapping does with
//! `ReportBatchItemFailures`. It receives up to ten messages, invokes the function
//! with an `SqsEvent`, deletes the messages that succeeded and leaves the reported
//! failures (or the whole batch, when the invocation failed) to reappear after the
//! visibility timeout, counting toward the queue's redrive to its DLQ.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use crate::lambda::{InvokeError, RuntimeApi};

pub struct EventSource {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    pub batch_size: i32,
    pub invoke_timeout: Duration,
    stats: Arc<Stats>,
    /// moto's SQS can hand one message to two concurrent ReceiveMessage calls (its
    /// state has no lock); real SQS makes that rare. Receives are serialized here so
    /// tests see SQS's normal behaviour; invocations still run concurrently.
    receiving: tokio::sync::Mutex<()>,
}

/// What one [`EventSource::poll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// Messages received (and handed to one invocation).
    pub received: usize,
    /// The invocation got no answer within `invoke_timeout`.
    pub timed_out: bool,
}

/// What the event source has done so far.
#[derive(Debug, Default)]
pub struct Stats {
    pub invocations: AtomicUsize,
    pub failed_invocations: AtomicUsize,
    pub reported_failures: AtomicUsize,
    pub deleted: AtomicUsize,
}

impl EventSource {
    pub async fn new(sqs: aws_sdk_sqs::Client, queue_url: &str) -> Self {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn =
            attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        EventSource {
            sqs,
            queue_url: queue_url.to_owned(),
            queue_arn,
            batch_size: 10,
            invoke_timeout: Duration::from_secs(20),
            stats: Arc::new(Stats::default()),
            receiving: tokio::sync::Mutex::new(()),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The `SqsEvent` Lambda would build for these messages.
    pub fn event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect())
                    .unwrap_or_default();
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    json!({"stringValue": v.string_value(), "dataType": v.data_type(),
                                           "stringListValues": [], "binaryListValues": []}),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "md5OfBody": m.md5_of_body(),
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Receives one batch and runs it. Returns how many messages were received.
    pub async fn poll_once(&self, runtime: &RuntimeApi, wait_seconds: i32) -> usize {
        self.poll(runtime, wait_seconds).await.received
    }

    /// [`EventSource::poll_once`], also saying whether the invocation timed out: Lambda then
    /// stops the execution environment, which the caller may want to do as well.
    pub async fn poll(&self, runtime: &RuntimeApi, wait_seconds: i32) -> Polled {
        let receiving = self.receiving.lock().await;
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        drop(receiving);
        let messages = match received {
            Ok(out) => out.messages().to_vec(),
            Err(_) => return Polled::default(),
        };
        if messages.is_empty() {
            return Polled::default();
        }
        self.stats.invocations.fetch_add(1, Ordering::SeqCst);
        let failed: Vec<String> = match runtime.invoke(self.event(&messages), self.invoke_timeout).await {
            Ok(response) => response["batchItemFailures"]
                .as_array()
                .map(|a| a.iter().filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(e) => {
                // The whole batch returns after the visibility timeout.
                self.stats.failed_invocations.fetch_add(1, Ordering::SeqCst);
                return Polled { received: messages.len(), timed_out: e == InvokeError::Timeout };
            }
        };
        self.stats.reported_failures.fetch_add(failed.len(), Ordering::SeqCst);
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            let n = entries.len();
            if self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .is_ok()
            {
                self.stats.deleted.fetch_add(n, Ordering::SeqCst);
            }
        }
        Polled { received: messages.len(), timed_out: false }
    }

    /// Messages visible, in flight and delayed.
    pub async fn backlog(&self) -> usize {
        self.count(true).await
    }

    /// Messages visible and in flight, and delayed ones when `delayed`.
    async fn count(&self, delayed: bool) -> usize {
        let mut ask = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        if delayed {
            ask = ask.attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed);
        }
        let out = ask.send().await;
        let Ok(out) = out else { return usize::MAX };
        out.attributes().map(|a| a.values().filter_map(|v| v.parse::<usize>().ok()).sum()).unwrap_or(usize::MAX)
    }

    /// Polls with `pollers` concurrent loops until the queue is empty (nothing
    /// visible, in flight or delayed) or `max` has passed. Returns whether it drained.
    pub async fn drain(self: &Arc<Self>, runtime: &Arc<RuntimeApi>, pollers: usize, max: Duration) -> bool {
        self.poll_until_empty(runtime, pollers, max, true).await
    }

    /// Like [`EventSource::drain`], but leaves delayed messages (deferrals hours away).
    pub async fn settle(self: &Arc<Self>, runtime: &Arc<RuntimeApi>, pollers: usize, max: Duration) -> bool {
        self.poll_until_empty(runtime, pollers, max, false).await
    }

    async fn poll_until_empty(
        self: &Arc<Self>,
        runtime: &Arc<RuntimeApi>,
        pollers: usize,
        max: Duration,
        delayed: bool,
    ) -> bool {
        let deadline = Instant::now() + max;
        loop {
            let tasks: Vec<_> = (0..pollers.max(1))
                .map(|_| {
                    let (me, rt) = (self.clone(), runtime.clone());
                    tokio::spawn(async move { me.poll_once(&rt, 1).await })
                })
                .collect();
            let mut got = 0;
            for t in tasks {
                got += t.await.unwrap_or(0);
            }
            if got == 0 && self.count(delayed).await == 0 {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
        }
    }
}
