//! The entry point's batch handler, in-process: the in-memory twins behind the ports and
//! plain `SqsEvent`s shaped as Lambda delivers them, the way aws-lambda-rust-runtime's
//! examples test a handler. The real binaries on moto are the functions' own tests.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use herald::pipeline::MAX_ATTEMPTS;
use herald::ports::SendError;
use herald::receipt::Status;
use herald::testing::MemoryStore;

#[tokio::test]
async fn a_batch_ends_in_one_receipt_per_record_and_no_failures() {
    let rig = rig(email_only);
    let records = vec![
        record("m1", &request("r1", "email"), 1, None),
        record("m2", "{not json", 1, None),
        record("m3", &request("r3", "sms"), 1, None),
    ];
    let response = rig.handler.handle(event(records), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    let receipts = rig.sink.receipts();
    assert_eq!(receipts.len(), 3, "{receipts:?}");
    let seen = by_request(&receipts);
    assert_eq!(seen["r1"].0, Status::Sent);
    assert_eq!(seen["r3"], (Status::Rejected, "wrong_queue:sms".to_owned()));
    assert!(receipts.iter().any(|r| r.status == Status::Rejected && r.request_id.is_none()), "the unparsable one");
    assert_eq!(rig.sender.sent().len(), 1);
    // The receipt names the record it came from.
    let sent = receipts.iter().find(|r| r.status == Status::Sent).expect("sent");
    assert_eq!(sent.source.as_deref(), Some("sqs:m1"));
    assert_eq!(rig.invocations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_request_for_another_channel_leaves_its_id_unused_for_the_right_function() {
    let table = Arc::new(MemoryStore::new());
    let email = rig_on(table.clone(), email_only);
    let sms = rig_on(table, sms_only);
    for (rig, message) in [(&email, "m1"), (&sms, "m2")] {
        let response = rig.handler.handle(event(vec![record(message, &request("same", "sms"), 1, None)]), None).await;
        assert_eq!(failures(&response), Vec::<String>::new());
    }
    assert_eq!(by_request(&email.sink.receipts())["same"], (Status::Rejected, "wrong_queue:sms".to_owned()));
    assert_eq!(by_request(&sms.sink.receipts())["same"].0, Status::Sent);
    assert_eq!((email.sender.sent().len(), sms.sender.sent().len()), (0, 1));
}

#[tokio::test]
async fn an_undecided_record_is_handed_back_and_the_others_are_not() {
    let rig = rig(email_only);
    rig.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let records = vec![record("m1", &request("r1", "email"), 1, None), record("m2", &request("r2", "email"), 1, None)];
    let response = rig.handler.handle(event(records), None).await;
    // Concurrency decides which of the two met the throttle: exactly one is handed back.
    let failed = failures(&response);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let receipts = rig.sink.receipts();
    assert_eq!(receipts.len(), 1, "no receipt for the undecided one: {receipts:?}");
    assert_eq!(receipts[0].status, Status::Sent);
    assert_ne!(receipts[0].source.as_deref(), Some(format!("sqs:{}", failed[0]).as_str()));
}

#[tokio::test]
async fn receives_and_hops_count_as_attempts_until_the_request_ends_failed() {
    let last = rig(email_only);
    // One hop and MAX_ATTEMPTS - 1 receives: attempt MAX_ATTEMPTS - 1, the last allowed.
    last.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let e = event(vec![record("m1", &request("r1", "email"), MAX_ATTEMPTS - 1, Some(1))]);
    let response = last.handler.handle(e, None).await;
    assert_eq!(failures(&response), Vec::<String>::new(), "out of attempts: ended, not handed back");
    assert_eq!(by_request(&last.sink.receipts())["r1"], (Status::Failed, "retries_exhausted".to_owned()));

    // One attempt fewer: handed back for SQS to deliver again, no receipt yet.
    let rig = rig(email_only);
    rig.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let e = event(vec![record("m1", &request("r1", "email"), MAX_ATTEMPTS - 2, Some(1))]);
    assert_eq!(failures(&rig.handler.handle(e, None).await), ["m1"]);
    assert!(rig.sink.receipts().is_empty());
}

#[tokio::test]
async fn past_the_deadline_nothing_starts_and_everything_is_handed_back() {
    let rig = rig(email_only);
    let records = vec![record("m1", &request("r1", "email"), 1, None), record("m2", &request("r2", "email"), 1, None)];
    let response = rig.handler.handle(event(records), Some(Instant::now())).await;
    assert_eq!(failures(&response), ["m1", "m2"]);
    assert!(rig.sender.sent().is_empty());
    assert!(rig.sink.receipts().is_empty());
}

#[tokio::test]
async fn a_terminal_receipt_that_cannot_go_out_hands_its_record_back() {
    let rig = rig(email_only);
    rig.sink.fail(true);
    let response = rig.handler.handle(event(vec![record("m1", &request("r1", "email"), 1, None)]), None).await;
    assert_eq!(failures(&response), ["m1"]);
    // The redelivery re-emits the recorded outcome and sends nothing again.
    rig.sink.fail(false);
    let response = rig.handler.handle(event(vec![record("m1", &request("r1", "email"), 2, None)]), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(by_request(&rig.sink.receipts())["r1"].0, Status::Sent);
    assert_eq!(rig.sender.sent().len(), 1);
    assert_eq!(rig.invocations.load(Ordering::SeqCst), 2, "the hook runs once per invocation");
}

#[tokio::test]
async fn a_senders_own_calls_count_in_the_budget() {
    for (extra, started) in [(0, true), (1, false)] {
        let mut rig = rig(email_only);
        rig.handler.extra_calls_per_record = extra;
        let calls = herald::pipeline::CALLS_PER_RECORD + herald::pipeline::CALLS_PER_EMIT;
        let room = rig.handler.aws_timeout * calls + Duration::from_millis(50);
        let response = rig
            .handler
            .handle(event(vec![record("m1", &request("r1", "email"), 1, None)]), Some(Instant::now() + room))
            .await;
        assert_eq!(failures(&response).is_empty(), started, "extra calls {extra}");
        assert_eq!(rig.sender.sent().len(), usize::from(started), "extra calls {extra}");
    }
}

#[test]
fn a_lock_must_outlast_the_calls_of_one_record() {
    use herald_lambda::{LOCK_MARGIN_CALLS, lock_outlasts_a_record};
    // An SMS function (one extra call) at 2.5 s per call.
    let calls = herald::pipeline::CALLS_PER_RECORD + 1 + LOCK_MARGIN_CALLS;
    let timeout = Duration::from_millis(2_500);
    let record = timeout * calls;
    assert!(lock_outlasts_a_record(record.as_secs() as i64 + 1, timeout, 1).is_ok());
    let refused = lock_outlasts_a_record(record.as_secs() as i64, timeout, 1).unwrap_err().to_string();
    let all = record.as_secs_f64();
    assert!(
        refused.contains(&format!("{calls} AWS calls of up to 2500 ms each (HERALD_AWS_TIMEOUT_MS), {all} s in all")),
        "{refused}"
    );
    assert!(refused.contains(&format!("Set lock_timeout to {}s or more", record.as_secs() + 1)), "{refused}");
    // A lock exactly as long as the calls could still expire under the last one.
    assert!(lock_outlasts_a_record(i64::from(calls), Duration::from_secs(1), 1).is_err());
    // The default lock (5m) is enough at the template's 2.5 s, not at any timeout.
    assert!(lock_outlasts_a_record(300, timeout, 3).is_ok());
    assert!(lock_outlasts_a_record(300, Duration::from_secs(30), 3).is_err());
}
