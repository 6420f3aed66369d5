//! The event log on Kafka (topic `moodwire.analyses`, keyed by keyword).
//!
//! Requests never wait for the broker: they append to the local [`Journal`], which
//! acts as a durable outbox, and the [`KafkaForwarder`] ships it to the topic with an
//! idempotent, `acks=all` producer, deleting entries only once the broker has them.
//! A dead broker therefore only grows the local journal. The [`KafkaFeed`] reads the
//! topic in consumer group `moodwire-sync` and commits offsets only when told to
//! (after the store's commit).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moodwire_core::ports::{DeadLetter, EventBatch, EventFeed, EventLogError, LogPosition};
use moodwire_core::{AnalysisRecorded, MAX_BATCH_BYTES};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::journal::{Entry, Journal};

/// How long one blocking broker call (metadata, commit, offsets) may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    /// Partitions of the topic when moodwire creates it.
    pub partitions: i32,
}

impl KafkaConfig {
    pub const DEFAULT_TOPIC: &'static str = "moodwire.analyses";
    pub const DEFAULT_GROUP: &'static str = "moodwire-sync";

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", "10000")
            .set("socket.connection.setup.timeout.ms", "5000");
        config
    }

    /// Creates the topic when it does not exist yet.
    pub async fn ensure_topic(&self) -> Result<(), EventLogError> {
        let admin: AdminClient<DefaultClientContext> = self
            .client()
            .create()
            .map_err(kafka_error("cannot create a Kafka admin client"))?;
        let topic = NewTopic::new(&self.topic, self.partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new()
            .operation_timeout(Some(BROKER_TIMEOUT))
            .request_timeout(Some(BROKER_TIMEOUT));
        // An admin request waits for a controller to talk to; with a broker that is
        // away or half back it may never answer, and the caller (the forwarder's
        // recovery) must not wait with it.
        let results = tokio::time::timeout(
            BROKER_TIMEOUT + Duration::from_secs(5),
            admin.create_topics([&topic], &options),
        )
        .await;
        // Destroying a librdkafka client can block while it winds down its broker
        // threads: never on an async worker thread.
        tokio::task::spawn_blocking(move || drop(admin));
        let results = results
            .map_err(|_| EventLogError("the broker did not answer the topic creation".into()))?
            .map_err(kafka_error("cannot create the Kafka topic"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(EventLogError(format!(
                        "cannot create the Kafka topic {topic}: {code}"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// Errors that sending the same record again cannot fix.
fn refused_for_good(e: &rdkafka::error::KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

fn kafka_error(context: &str) -> impl Fn(rdkafka::error::KafkaError) -> EventLogError + '_ {
    move |e| EventLogError(format!("{context}: {e}"))
}

/// Ships the journal (the outbox) to the topic, oldest first.
pub struct KafkaForwarder {
    journal: Journal,
    /// Replaced after a failure: a fresh idempotent producer gets a fresh producer id,
    /// so a broker that lost its state (a rebuilt cluster) does not reject its sequence.
    producer: std::sync::Mutex<FutureProducer>,
    config: KafkaConfig,
}

impl KafkaForwarder {
    const BATCH: usize = 500;

    pub fn new(journal: Journal, config: &KafkaConfig) -> Result<Self, EventLogError> {
        Ok(KafkaForwarder {
            journal,
            producer: std::sync::Mutex::new(Self::producer(config)?),
            config: config.clone(),
        })
    }

    /// Largest record the producer sends: Kafka's own default, said explicitly so that
    /// the bound on events ([`moodwire_core::MAX_EVENT_BYTES`]) is checked against it.
    pub const MESSAGE_MAX_BYTES: usize = 1_000_000;

    fn producer(config: &KafkaConfig) -> Result<FutureProducer, EventLogError> {
        config
            .client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            // JSON events compress several times over; lz4 is built into librdkafka.
            .set("compression.type", "lz4")
            .set("message.max.bytes", Self::MESSAGE_MAX_BYTES.to_string())
            // A batch the broker has not taken by then is retried from the journal.
            .set("message.timeout.ms", "15000")
            // The forwarder has one batch (MAX_BATCH_BYTES) in flight; the default
            // bound, 1 GB, would let a dead broker's backlog grow that far in memory.
            .set("queue.buffering.max.kbytes", "65536")
            .create()
            .map_err(kafka_error("cannot create the Kafka producer"))
    }

    fn current_producer(&self) -> FutureProducer {
        // The lock only guards a swap of a cheap handle; a panic cannot leave it torn.
        self.producer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// After a failure: a new producer, and the topic made sure of, for a broker that
    /// may have come back without them.
    async fn recover(&self) {
        match Self::producer(&self.config) {
            Ok(fresh) => {
                let old = std::mem::replace(
                    &mut *self
                        .producer
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                    fresh,
                );
                // Dropping a producer flushes and destroys it, which can block.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(e) => tracing::warn!(error = %e, "cannot recreate the Kafka producer"),
        }
        if let Err(e) = self.config.ensure_topic().await {
            tracing::debug!(error = %e, "the topic cannot be checked yet");
        }
    }

    /// Sends what the journal holds, batch by batch, until it is empty. Returns how
    /// many events the broker acknowledged. An entry the broker refuses for good (too
    /// large, malformed) never blocks the others: it is split into parts that fit, or,
    /// when it cannot be, set aside in the journal ([`Journal::unsendable`]).
    pub async fn forward_all(&self) -> Result<usize, EventLogError> {
        let mut forwarded = 0;
        loop {
            let entries = self.journal.oldest(Self::BATCH).await?;
            let Some(&(last, _, _)) = entries.last() else {
                return Ok(forwarded);
            };
            let refused = self.send(&entries).await?;
            for (entry, error) in &refused {
                self.move_aside(entry, error).await?;
            }
            self.journal.truncate_before(last + 1).await?;
            let sent = entries.len() - refused.len();
            forwarded += sent;
            metrics::counter!("moodwire_events_forwarded_total").increment(sent as u64);
        }
    }

    /// Sends a batch; returns the entries the broker refused for good, with why. Any
    /// other failure fails the batch, which is sent again later (the store's upserts
    /// make the copies harmless).
    async fn send(&self, entries: &[Entry]) -> Result<Vec<(Entry, String)>, EventLogError> {
        let producer = self.current_producer();
        let deliveries = entries.iter().map(|(_, key, payload)| {
            producer.send(
                FutureRecord::to(&self.config.topic)
                    .key(key)
                    .payload(payload),
                Duration::from_secs(5),
            )
        });
        // `message.timeout.ms` bounds each delivery; this bounds the batch regardless.
        let delivered = tokio::time::timeout(
            Duration::from_secs(30),
            futures_util::future::join_all(deliveries),
        )
        .await
        .map_err(|_| EventLogError("the broker did not acknowledge within 30 s".into()))?;
        let mut refused = Vec::new();
        for (entry, delivery) in entries.iter().zip(delivered) {
            if let Err((e, _)) = delivery {
                if !refused_for_good(&e) {
                    return Err(EventLogError(format!(
                        "the broker did not take an event: {e}"
                    )));
                }
                refused.push((entry.clone(), e.to_string()));
            }
        }
        Ok(refused)
    }

    /// An entry no broker takes: its parts go back in the journal when it can be
    /// split, else it is set aside. Either way it no longer holds up the others.
    async fn move_aside(&self, entry: &Entry, error: &str) -> Result<(), EventLogError> {
        let (seq, key, payload) = entry;
        let parts = AnalysisRecorded::from_json(payload)
            .ok()
            .map(|event| event.split_to_fit(payload.len() / 2))
            .filter(|parts| parts.len() > 1);
        match parts {
            Some(parts) => {
                let parts: Vec<Vec<u8>> = parts.iter().map(AnalysisRecorded::to_json).collect();
                tracing::warn!(
                    seq,
                    bytes = payload.len(),
                    parts = parts.len(),
                    error,
                    "the broker refused an event; sending it in parts"
                );
                self.journal.replace(*seq, key, &parts).await
            }
            None => {
                tracing::error!(seq, bytes = payload.len(), error, "the broker refuses an event that cannot be split; set aside in the journal (`moodwire sync --dead-letters`)");
                metrics::counter!("moodwire_dead_letters_total").increment(1);
                self.journal.set_aside(entry, error).await
            }
        }
    }

    /// Forwards until `stop` resolves: at once when the journal has entries, with
    /// backoff (up to a minute) while the broker is away.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(200);
        loop {
            let pause = match self.forward_all().await {
                Ok(_) => {
                    backoff = Duration::from_millis(200);
                    Duration::from_millis(100)
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot forward events to Kafka; they stay in the journal");
                    self.recover().await;
                    let pause = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    pause
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// One member of the consumer group reading the topic.
pub struct KafkaFeed {
    consumer: Arc<StreamConsumer>,
    topic: String,
}

/// How long a read waits for the group to assign this member its partitions, at most.
const GROUP_JOIN_WAIT: Duration = Duration::from_secs(5);
/// How often it looks whether they have been assigned meanwhile.
const JOIN_POLL: Duration = Duration::from_millis(100);

impl KafkaFeed {
    pub fn subscribe(config: &KafkaConfig) -> Result<Self, EventLogError> {
        let consumer: StreamConsumer = config
            .client()
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // Short, so a dead member's partitions move on quickly: the session for a
            // member that stops heartbeating, the poll interval (also the rebalance
            // timeout a coordinator may wait out) for one that stops reading. An idle
            // worker that passes it leaves the group and rejoins on its next read.
            .set("session.timeout.ms", "6000")
            .set("max.poll.interval.ms", "30000")
            .set("heartbeat.interval.ms", "1000")
            // Notice a re-created topic (a broker rebuilt from scratch) within seconds.
            .set("topic.metadata.refresh.interval.ms", "5000")
            .create()
            .map_err(kafka_error("cannot create the Kafka consumer"))?;
        consumer
            .subscribe(&[&config.topic])
            .map_err(kafka_error("cannot subscribe to the Kafka topic"))?;
        Ok(KafkaFeed {
            consumer: Arc::new(consumer),
            topic: config.topic.clone(),
        })
    }

    /// Whether the group has assigned this member any partition yet (a local call).
    fn has_partitions(&self) -> bool {
        self.consumer
            .assignment()
            .is_ok_and(|assigned| assigned.count() > 0)
    }

    /// Runs a blocking librdkafka call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&StreamConsumer) -> Result<T, EventLogError> + Send + 'static,
    ) -> Result<T, EventLogError> {
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || call(&consumer))
            .await
            .map_err(|e| EventLogError(format!("a Kafka call panicked: {e}")))?
    }
}

#[async_trait]
impl EventFeed for KafkaFeed {
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<EventBatch, EventLogError> {
        let mut batch = EventBatch::default();
        // Per partition: the first offset read and the next one to read.
        let mut read: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        // The first message may take `wait`; after it, take what is already there.
        let started = tokio::time::Instant::now();
        let mut deadline = started + wait;
        let mut joined = self.has_partitions();
        let mut last_error = None;
        let mut bytes = 0;
        while batch.len() < max && bytes < MAX_BATCH_BYTES {
            let message = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                // Before the group has given this member its partitions, no message
                // proves nothing (a one-shot `moodwire sync`, or a worker idle past
                // the poll interval, joins again on this read): wait for the
                // assignment, up to GROUP_JOIN_WAIT, then `wait` from there.
                Err(_) if !joined && started.elapsed() < GROUP_JOIN_WAIT => {
                    joined = self.has_partitions();
                    let now = tokio::time::Instant::now();
                    deadline = if joined { now + wait } else { now + JOIN_POLL };
                    continue;
                }
                Err(_) => break,
                // librdkafka reports broker trouble here and carries on (reconnecting,
                // rejoining the group): note it and keep reading until the deadline.
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "Kafka consumer error");
                    last_error = Some(e);
                    continue;
                }
                Ok(Ok(message)) => message,
            };
            read.entry(message.partition())
                .or_insert((message.offset(), 0))
                .1 = message.offset() + 1;
            let payload = message.payload().unwrap_or_default();
            bytes += payload.len();
            match AnalysisRecorded::from_json(payload) {
                Ok(event) => batch.events.push(event),
                Err(e) => batch.unreadable.push(DeadLetter {
                    analysis_id: None,
                    payload: payload.to_vec(),
                    error: e.to_string(),
                    origin: format!(
                        "kafka {}/{}@{}",
                        self.topic,
                        message.partition(),
                        message.offset()
                    ),
                }),
            }
            deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        }
        if let (true, Some(e)) = (batch.is_empty(), last_error) {
            return Err(kafka_error("cannot read from Kafka")(e));
        }
        if !read.is_empty() {
            // Which offsets each batch covered: a gap between one batch's end and the
            // next one's start is a skipped event.
            tracing::debug!(?read, events = batch.len(), "read a batch from Kafka");
        }
        batch.position = LogPosition(read.into_iter().map(|(p, (_, next))| (p, next)).collect());
        Ok(batch)
    }

    async fn commit(&mut self, position: &LogPosition) -> Result<(), EventLogError> {
        if position.0.is_empty() {
            return Ok(());
        }
        tracing::debug!(position = ?position.0, "committing Kafka offsets");
        let mut offsets = TopicPartitionList::new();
        for &(partition, next) in &position.0 {
            offsets
                .add_partition_offset(&self.topic, partition, Offset::Offset(next))
                .map_err(kafka_error("bad offset"))?;
        }
        self.blocking(move |consumer| {
            consumer
                .commit(&offsets, CommitMode::Sync)
                .map_err(kafka_error("cannot commit Kafka offsets"))
        })
        .await
    }

    async fn rewind(&mut self) -> Result<(), EventLogError> {
        self.blocking(|consumer| {
            let committed = consumer
                .committed(BROKER_TIMEOUT)
                .map_err(kafka_error("cannot read committed offsets"))?;
            for elem in committed.elements() {
                let offset = match elem.offset() {
                    Offset::Offset(n) => Offset::Offset(n),
                    _ => Offset::Beginning,
                };
                tracing::debug!(
                    partition = elem.partition(),
                    ?offset,
                    "rewinding the Kafka consumer"
                );
                consumer
                    .seek(elem.topic(), elem.partition(), offset, BROKER_TIMEOUT)
                    .map_err(kafka_error("cannot rewind the Kafka consumer"))?;
            }
            Ok(())
        })
        .await
    }

    /// The group's lag over every partition of the topic.
    async fn backlog(&mut self) -> Result<u64, EventLogError> {
        let topic = self.topic.clone();
        self.blocking(move |consumer| {
            let metadata = consumer
                .fetch_metadata(Some(&topic), BROKER_TIMEOUT)
                .map_err(kafka_error("cannot read Kafka metadata"))?;
            let mut all = TopicPartitionList::new();
            for t in metadata.topics() {
                for p in t.partitions() {
                    all.add_partition(&topic, p.id());
                }
            }
            let committed = consumer
                .committed_offsets(all, BROKER_TIMEOUT)
                .map_err(kafka_error("cannot read committed offsets"))?;
            let mut lag = 0u64;
            for elem in committed.elements() {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, elem.partition(), BROKER_TIMEOUT)
                    .map_err(kafka_error("cannot read Kafka watermarks"))?;
                let done = match elem.offset() {
                    Offset::Offset(n) => n,
                    _ => low,
                };
                lag += (high - done).max(0) as u64;
            }
            Ok(lag)
        })
        .await
    }
}
