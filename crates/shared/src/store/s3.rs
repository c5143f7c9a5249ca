//! S3 store through `aws-sdk-s3`.
//!
//! Works with AWS and S3-compatible servers (MinIO, Garage, Ceph, s3s-fs):
//! custom endpoint, path-style or virtual-host addressing. Credentials come
//! from the usual AWS chain (environment variables, profile, web identity,
//! container or instance metadata).
//!
//! Requests use a short connect timeout and the SDK's standard retry (3
//! attempts); errors that may go away are reported as
//! [`StoreError::Unavailable`] so that callers retry the work later.
//! Checksums are only computed or validated where the S3 API requires them,
//! since several S3-compatible servers reject or mis-handle the optional ones.

use super::interface::*;
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream as SdkByteStream, DateTime, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::path::Path;
use std::time::Duration;
use std::time::SystemTime;
use tokio::io::AsyncWriteExt;

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Limit on one attempt of a small request (for a GET: until the headers).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit on a small request including its retries.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(75);
/// Attempts per request (the first one included).
const MAX_ATTEMPTS: u32 = 3;
/// Slowest upload speed tolerated when sizing upload timeouts (bytes/s).
const MIN_UPLOAD_SPEED: u64 = 1024 * 1024;
/// Files larger than this are uploaded in parts.
const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Default part size of multipart uploads.
const DEFAULT_PART_SIZE: u64 = 64 * 1024 * 1024;
/// The smallest part S3 accepts (except the last).
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The most parts one upload may have.
const MAX_PARTS: u64 = 10_000;
/// Parts uploaded at the same time.
const PART_CONCURRENCY: usize = 4;
/// Keys per ListObjectsV2 request.
const LIST_PAGE: usize = 1000;

/// A store in an S3 bucket.
pub struct S3Store {
    client: Client,
    settings: S3Settings,
    multipart_threshold: u64,
    part_size: u64,
}

/// How to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint URL for S3-compatible servers (`http://minio:9000`); `None`: AWS.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` for most S3-compatible servers); empty: the AWS default chain.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts.
    pub path_style: bool,
    /// Create the bucket when it does not exist.
    pub create_bucket: bool,
}

impl S3Settings {
    fn endpoint_name(&self) -> &str {
        self.endpoint.as_deref().unwrap_or("AWS S3")
    }
}

/// Removes the quotes around an ETag.
fn strip_etag(etag: Option<&str>) -> String {
    etag.map(|e| e.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

fn system_time(t: Option<&DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn non_negative(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// The total size from a `Content-Range` header (`bytes 0-9/100` or `bytes */100`).
fn content_range_total(header: &str) -> Option<u64> {
    let (_, total) = header.rsplit_once('/')?;
    total.trim().parse().ok()
}

/// The HTTP status of a failed call, when a response came back.
fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether a failure says the bucket does not exist.
fn is_missing_bucket<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    matches!(err.code(), Some("NoSuchBucket"))
}

/// Whether a failure is a 416 / InvalidRange.
fn is_bad_range<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    status_of(err) == Some(416) || matches!(err.code(), Some("InvalidRange"))
}

/// Maps an SDK failure on `key` to a store error.
fn map_err<E>(op: &str, key: &str, bucket: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if is_missing_bucket(&err) {
        return StoreError::Config(format!("S3 {op} {key}: bucket {bucket} does not exist"));
    }
    // A conditional write that lost (412), or raced another one (409).
    if status_of(&err) == Some(412)
        || matches!(
            err.code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
    {
        return StoreError::Conflict(key.to_string());
    }
    // Access denied, bad or unknown credentials, a malformed request: the
    // configuration is wrong, retrying the call cannot help.
    if matches!(
        err.code(),
        Some(
            "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidBucketName"
                | "AuthorizationHeaderMalformed"
                | "AllAccessDisabled"
                | "AccountProblem"
        )
    ) || status_of(&err) == Some(403)
    {
        // The code and message only: the SDK's full context is a page long
        // and this goes to /readyz and the log.
        let code = err.code().unwrap_or("HTTP 403");
        let message = err.message().unwrap_or("access denied");
        return StoreError::Config(format!(
            "S3 {op} {key} in {bucket} refused: {code}: {message}"
        ));
    }
    let not_found =
        status_of(&err) == Some(404) || matches!(err.code(), Some("NoSuchKey" | "NotFound"));
    if not_found {
        return StoreError::NotFound(key.to_string());
    }
    if is_bad_range(&err) {
        let size = err
            .raw_response()
            .and_then(|r| r.headers().get("content-range"))
            .and_then(content_range_total)
            .unwrap_or(0);
        return StoreError::RangeNotSatisfiable {
            key: key.to_string(),
            size,
        };
    }
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status_of(&err).is_some_and(|s| s >= 500 || s == 429 || s == 408)
                || matches!(
                    err.code(),
                    Some(
                        "SlowDown"
                            | "Throttling"
                            | "ThrottlingException"
                            | "RequestTimeout"
                            | "InternalError"
                    )
                )
        }
        _ => false,
    };
    let what = if transient {
        "failed (transient)"
    } else {
        "failed"
    };
    StoreError::Unavailable(format!(
        "S3 {op} {key} in {bucket} {what}: {}",
        DisplayErrorContext(&err)
    ))
}

fn body_error(key: &str, err: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "S3 read of {key} failed: {}",
        DisplayErrorContext(&err)
    ))
}

/// Timeouts for a request that uploads `bytes` bytes: time for the body at
/// [`MIN_UPLOAD_SPEED`] on top of the usual attempt limit.
fn upload_timeouts(bytes: u64) -> aws_sdk_s3::config::Builder {
    let attempt = ATTEMPT_TIMEOUT + Duration::from_secs(bytes / MIN_UPLOAD_SPEED);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * MAX_ATTEMPTS + Duration::from_secs(15))
        .build();
    aws_sdk_s3::config::Builder::default().timeout_config(timeouts)
}

/// Keeps `take` bytes of a stream after skipping `skip` (for servers that
/// ignore the `Range` header and send the whole object).
fn slice_stream(inner: ByteStream, skip: u64, take: u64) -> ByteStream {
    futures::stream::unfold(
        (inner, skip, take),
        |(mut inner, mut skip, mut take)| async move {
            loop {
                if take == 0 {
                    return None;
                }
                let mut chunk = match inner.next().await? {
                    Ok(chunk) => chunk,
                    Err(e) => return Some((Err(e), (inner, skip, 0))),
                };
                let len = chunk.len() as u64;
                if skip >= len {
                    skip -= len;
                    continue;
                }
                // skip < len, so it fits in usize.
                let _ = chunk.split_to(skip as usize);
                skip = 0;
                if chunk.len() as u64 > take {
                    chunk.truncate(take as usize);
                }
                take -= chunk.len() as u64;
                return Some((Ok(chunk), (inner, skip, take)));
            }
        },
    )
    .boxed()
}

impl S3Store {
    /// Connects and checks the bucket (creating it when asked to and missing).
    ///
    /// Fails with a clear message when the endpoint cannot be reached, the
    /// credentials are refused, or the bucket does not exist.
    pub async fn connect(settings: S3Settings) -> Result<Self, StoreError> {
        if settings.bucket.is_empty() {
            return Err(StoreError::Unavailable("no S3 bucket name given".into()));
        }
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if !settings.region.is_empty() {
            loader = loader.region(Region::new(settings.region.clone()));
        }
        if let Some(endpoint) = settings.endpoint.as_deref().filter(|e| !e.is_empty()) {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk_config = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(settings.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let store = S3Store {
            client: Client::from_conf(config),
            settings,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        };
        store.check_bucket().await?;
        tracing::debug!(bucket = %store.settings.bucket, endpoint = store.settings.endpoint_name(), "S3 store ready");
        Ok(store)
    }

    /// Sets when [`Store::put_file`] switches to a multipart upload (files
    /// larger than `threshold` bytes) and the part size (at least 5 MiB).
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold.max(MIN_PART_SIZE);
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    /// The SDK client (for operations the [`Store`] trait does not cover).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    async fn check_bucket(&self) -> Result<(), StoreError> {
        let bucket = &self.settings.bucket;
        let endpoint = self.settings.endpoint_name();
        let err = match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let missing = status_of(&err) == Some(404)
            || is_missing_bucket(&err)
            || matches!(err.code(), Some("NotFound"));
        if !missing {
            // Refusals no retry can fix are configuration errors; anything
            // else (no answer, 5xx) may pass.
            let (config, detail) = match status_of(&err) {
                Some(400 | 401 | 403) => {
                    (true, "access denied (check the credentials)".to_string())
                }
                Some(301) => (
                    true,
                    "the bucket is in another region, or needs path-style addressing".to_string(),
                ),
                _ => (false, DisplayErrorContext(&err).to_string()),
            };
            let message = format!("cannot reach S3 bucket {bucket} at {endpoint}: {detail}");
            return Err(if config {
                StoreError::Config(message)
            } else {
                StoreError::Unavailable(message)
            });
        }
        if !self.settings.create_bucket {
            return Err(StoreError::Config(format!(
                "S3 bucket {bucket} does not exist at {endpoint} (create it, or enable bucket creation)"
            )));
        }
        self.create_bucket().await
    }

    async fn create_bucket(&self) -> Result<(), StoreError> {
        let bucket = &self.settings.bucket;
        let mut req = self.client.create_bucket().bucket(bucket);
        let region = self.settings.region.as_str();
        if !region.is_empty() && region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => {
                tracing::info!(bucket = %bucket, endpoint = self.settings.endpoint_name(), "created S3 bucket");
                Ok(())
            }
            // Another replica may have created it meanwhile.
            Err(err)
                if matches!(
                    err.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                self.client
                    .head_bucket()
                    .bucket(bucket)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        StoreError::Unavailable(format!(
                            "S3 bucket {bucket} exists but is not usable: {}",
                            DisplayErrorContext(&e)
                        ))
                    })
            }
            Err(err) => Err(StoreError::Unavailable(format!(
                "could not create S3 bucket {bucket} at {}: {}",
                self.settings.endpoint_name(),
                DisplayErrorContext(&err)
            ))),
        }
    }

    fn err<E>(&self, op: &str, key: &str, err: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        map_err(op, key, &self.settings.bucket, err)
    }

    /// The object's size for a `RangeNotSatisfiable` answer that lacked it.
    async fn range_error(&self, key: &str, size_hint: Option<u64>) -> StoreError {
        let size = match size_hint {
            Some(size) => size,
            None => match self.head(key).await {
                Ok(Some(meta)) => meta.size,
                Ok(None) => return StoreError::NotFound(key.to_string()),
                Err(e) => return e,
            },
        };
        StoreError::RangeNotSatisfiable {
            key: key.to_string(),
            size,
        }
    }

    /// Uploads a large file in parts; the object appears only on completion.
    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        content_type: &str,
    ) -> Result<String, StoreError> {
        let bucket = &self.settings.bucket;
        let part_size = self
            .part_size
            .max(size.div_ceil(MAX_PARTS))
            .max(MIN_PART_SIZE);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| self.err("CreateMultipartUpload", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Unavailable(format!("S3 gave no upload id for {key}")))?
            .to_string();

        let parts = (0..size.div_ceil(part_size)).map(|i| {
            let offset = i * part_size;
            (i as i32 + 1, offset, part_size.min(size - offset))
        });
        let uploaded: Result<Vec<CompletedPart>, StoreError> = futures::stream::iter(parts)
            .map(|(number, offset, len)| {
                let upload_id = upload_id.as_str();
                async move {
                    let body = SdkByteStream::read_from()
                        .path(path)
                        .offset(offset)
                        .length(Length::Exact(len))
                        .build()
                        .await
                        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(len as i64)
                        .body(body)
                        .customize()
                        .config_override(upload_timeouts(len))
                        .send()
                        .await
                        .map_err(|e| self.err("UploadPart", key, e))?;
                    Ok(CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .build())
                }
            })
            .buffered(PART_CONCURRENCY)
            .try_collect()
            .await;

        let completed = match uploaded {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.err("CompleteMultipartUpload", key, e)),
            Err(e) => Err(e),
        };
        match completed {
            Ok(out) => Ok(strip_etag(out.e_tag())),
            Err(e) => {
                let abort = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(abort) = abort {
                    tracing::warn!(key, upload_id, error = %DisplayErrorContext(&abort), "could not abort multipart upload");
                }
                Err(e)
            }
        }
    }
}

/// The precondition of a single-request PUT.
#[derive(Debug, Clone, Copy)]
enum WriteCondition<'a> {
    /// Replace whatever is there.
    None,
    /// Only over the object whose entity tag this is (`If-Match`).
    IfMatch(&'a str),
    /// Only when no object exists (`If-None-Match: *`).
    IfAbsent,
}

impl S3Store {
    /// Stores `body` whole in one PUT, under `condition`.
    async fn put_bytes(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: WriteCondition<'_>,
    ) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let size = body.len() as u64;
        let req = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            .body(SdkByteStream::from(body));
        let req = match condition {
            WriteCondition::None => req,
            WriteCondition::IfMatch(etag) => req.if_match(format!("\"{etag}\"")),
            WriteCondition::IfAbsent => req.if_none_match("*"),
        };
        let out = req
            .customize()
            .config_override(upload_timeouts(size))
            .send()
            .await
            .map_err(|e| self.err("PUT", key, e))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            etag: strip_etag(out.e_tag()),
            last_modified: None,
            content_type: Some(content_type.to_string()),
        })
    }
}

#[async_trait]
impl Store for S3Store {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        self.put_bytes(key, body, content_type, WriteCondition::None)
            .await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let size = tokio::fs::metadata(path).await?.len();
        let etag = if size > self.multipart_threshold {
            self.put_multipart(key, path, size, content_type).await?
        } else {
            let body = SdkByteStream::read_from()
                .path(path)
                .length(Length::Exact(size))
                .build()
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
            let out = self
                .client
                .put_object()
                .bucket(&self.settings.bucket)
                .key(key)
                .content_type(content_type)
                .content_length(size as i64)
                .body(body)
                .customize()
                .config_override(upload_timeouts(size))
                .send()
                .await
                .map_err(|e| self.err("PUT", key, e))?;
            strip_etag(out.e_tag())
        };
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            etag,
            last_modified: None,
            content_type: Some(content_type.to_string()),
        })
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("GET", key, e))?;
        let body = out.body.collect().await.map_err(|e| body_error(key, e))?;
        Ok(body.into_bytes())
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, String), StoreError> {
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("GET", key, e))?;
        let etag = strip_etag(out.e_tag());
        let body = out.body.collect().await.map_err(|e| body_error(key, e))?;
        Ok((body.into_bytes(), etag))
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        if_match: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        let condition = match if_match {
            Some(etag) => WriteCondition::IfMatch(etag),
            None => WriteCondition::IfAbsent,
        };
        self.put_bytes(key, body, content_type, condition).await
    }

    async fn get_stream(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectMeta, ByteStream), StoreError> {
        validate_key(key)?;
        let mut req = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key);
        if let Some(r) = range {
            if r.end < r.start {
                return Err(self.range_error(key, None).await);
            }
            // An open end means the same as a huge one, and is parsed by every server.
            req = if r.end >= i64::MAX as u64 {
                req.range(format!("bytes={}-", r.start))
            } else {
                req.range(format!("bytes={}-{}", r.start, r.end))
            };
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(match self.err("GET", key, e) {
                    StoreError::RangeNotSatisfiable { size: 0, .. } => {
                        self.range_error(key, None).await
                    }
                    other => other,
                })
            }
        };
        let length = non_negative(out.content_length());
        let mut meta = ObjectMeta {
            key: key.to_string(),
            size: length,
            etag: strip_etag(out.e_tag()),
            last_modified: system_time(out.last_modified()),
            content_type: out.content_type().map(str::to_string),
        };
        let owned_key = key.to_string();
        let body = futures::stream::unfold((out.body, owned_key), |(mut body, key)| async move {
            let item = body.next().await?;
            Some((item.map_err(|e| body_error(&key, e)), (body, key)))
        })
        .boxed();
        let Some(r) = range else {
            return Ok((meta, body));
        };
        match out.content_range.as_deref() {
            Some(content_range) => {
                meta.size = match content_range_total(content_range) {
                    Some(total) => total,
                    None => match self.head(key).await? {
                        Some(head) => head.size,
                        None => return Err(StoreError::NotFound(key.to_string())),
                    },
                };
                Ok((meta, body))
            }
            None => {
                // The server ignored the range and sent the whole object.
                tracing::debug!(key, "S3 server ignored the Range header");
                if r.start >= length {
                    return Err(StoreError::RangeNotSatisfiable {
                        key: key.to_string(),
                        size: length,
                    });
                }
                let end = r.end.min(length - 1);
                Ok((meta, slice_stream(body, r.start, end - r.start + 1)))
            }
        }
    }

    async fn download(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("GET", key, e))?;
        let expected = out.content_length().and_then(|n| u64::try_from(n).ok());
        let mut body = out.body;
        let mut file = tokio::fs::File::create(path).await?;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| body_error(key, e))?;
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        file.flush().await?;
        if let Some(expected) = expected.filter(|&n| n != written) {
            return Err(StoreError::Unavailable(format!(
                "S3 read of {key} ended after {written} of {expected} bytes"
            )));
        }
        Ok(written)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        validate_key(key)?;
        let result = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: non_negative(out.content_length()),
                etag: strip_etag(out.e_tag()),
                last_modified: system_time(out.last_modified()),
                content_type: out.content_type().map(str::to_string),
            })),
            Err(e) => match self.err("HEAD", key, e) {
                StoreError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.max(1);
        let mut objects: Vec<ObjectMeta> = Vec::new();
        let mut after = start_after.map(str::to_string);
        let mut next = None;
        loop {
            let max_keys = (limit - objects.len()).min(LIST_PAGE);
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.settings.bucket)
                .max_keys(max_keys as i32);
            if !prefix.is_empty() {
                req = req.prefix(prefix);
            }
            if let Some(a) = after.as_deref() {
                req = req.start_after(a);
            }
            let out = req.send().await.map_err(|e| self.err("LIST", prefix, e))?;
            let got = out.contents().len();
            // Some servers (s3s-fs) leave the ETag out of listings: it is then empty.
            for object in out.contents() {
                let Some(key) = object.key() else { continue };
                objects.push(ObjectMeta {
                    key: key.to_string(),
                    size: non_negative(object.size()),
                    etag: strip_etag(object.e_tag()),
                    last_modified: system_time(object.last_modified()),
                    content_type: None,
                });
            }
            let truncated = out.is_truncated().unwrap_or(got >= max_keys);
            if !truncated || got == 0 {
                break;
            }
            // Page on with start_after rather than continuation tokens:
            // same result, and understood by every S3 implementation.
            after = objects.last().map(|m| m.key.clone());
            if objects.len() >= limit {
                next = after;
                break;
            }
        }
        Ok(ListPage { objects, next })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let result = self
            .client
            .delete_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match self.err("DELETE", key, e) {
                StoreError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let bucket = &self.settings.bucket;
        self.client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let endpoint = self.settings.endpoint_name();
                match status_of(&e) {
                    Some(404) => StoreError::Config(format!(
                        "S3 bucket {bucket} at {endpoint} does not exist"
                    )),
                    Some(400 | 401 | 403) => StoreError::Config(format!(
                        "S3 bucket {bucket} at {endpoint} refuses these credentials: {}",
                        DisplayErrorContext(&e)
                    )),
                    _ => StoreError::Unavailable(format!(
                        "S3 bucket {bucket} at {endpoint} is not reachable: {}",
                        DisplayErrorContext(&e)
                    )),
                }
            })
    }

    fn describe(&self) -> String {
        format!("s3://{}", self.settings.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_ranges() {
        assert_eq!(strip_etag(Some("\"abc\"")), "abc");
        assert_eq!(strip_etag(Some("abc-3")), "abc-3");
        assert_eq!(strip_etag(None), "");
        assert_eq!(content_range_total("bytes 0-9/100"), Some(100));
        assert_eq!(content_range_total("bytes */42"), Some(42));
        assert_eq!(content_range_total("bytes 0-9/*"), None);
    }

    #[tokio::test]
    async fn slicing_a_whole_body() {
        let chunks: Vec<Result<Bytes, StoreError>> = vec![
            Ok(Bytes::from_static(b"0123")),
            Ok(Bytes::from_static(b"4567")),
            Ok(Bytes::from_static(b"89")),
        ];
        let sliced: Vec<Bytes> = slice_stream(futures::stream::iter(chunks).boxed(), 3, 6)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(sliced.concat(), b"345678");
    }
}
