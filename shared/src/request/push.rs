//! Push targets: an FCM registration token, an APNs device token, or a Web Push
//! subscription. Shapes are checked here so a typo fails as `rejected`, not as a
//! provider error after a cap slot was spent.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PushPlatform {
    #[serde(rename = "fcm")]
    Fcm,
    #[serde(rename = "apns")]
    Apns,
    #[serde(rename = "webpush")]
    WebPush,
    /// SNS mobile push: a platform endpoint (APNs or FCM behind SNS).
    #[serde(rename = "sns")]
    Sns,
}

impl PushPlatform {
    pub fn as_str(self) -> &'static str {
        match self {
            PushPlatform::Fcm => "fcm",
            PushPlatform::Apns => "apns",
            PushPlatform::WebPush => "webpush",
            PushPlatform::Sns => "sns",
        }
    }
}

/// Which APNs host a device token belongs to: tokens of development builds (Xcode runs)
/// only work on the sandbox host, the others only on production; the wrong host answers
/// `BadDeviceToken`, which would get a good token suppressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApnsEnvironment {
    #[default]
    Production,
    Sandbox,
}

/// The keys of a Web Push subscription (`PushSubscription.toJSON().keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebPushKeys {
    /// base64url P-256 public key of the browser (65 bytes, uncompressed point).
    pub p256dh: String,
    /// base64url 16-byte authentication secret.
    pub auth: String,
}

/// The platform of an SNS platform application, as its endpoint ARNs name it
/// (`arn:aws:sns:<region>:<account>:endpoint/<PLATFORM>/<application>/<id>`): it picks
/// the key of the `MessageStructure=json` message SNS delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnsPlatform {
    Apns,
    ApnsSandbox,
    Gcm,
}

impl SnsPlatform {
    /// The message key (and ARN segment) SNS uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            SnsPlatform::Apns => "APNS",
            SnsPlatform::ApnsSandbox => "APNS_SANDBOX",
            SnsPlatform::Gcm => "GCM",
        }
    }

    /// Whether the endpoint is an Apple device (the payload is an APNs one).
    pub fn is_apple(self) -> bool {
        matches!(self, SnsPlatform::Apns | SnsPlatform::ApnsSandbox)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTarget {
    Fcm {
        token: String,
    },
    /// `environment`: the host the token belongs to, when the request says (else the push
    /// function's `push.apns_environment`).
    Apns {
        token: String,
        environment: Option<ApnsEnvironment>,
    },
    WebPush {
        endpoint: String,
        keys: WebPushKeys,
    },
    /// An SNS platform endpoint (what Pinpoint and SNS users registered devices as).
    Sns {
        endpoint_arn: String,
        platform: SnsPlatform,
    },
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "PushTarget",
    description = "A device: {\"platform\": \"fcm\"|\"apns\", \"token\"} (apns: optionally \"environment\": \"production\"|\"sandbox\"), {\"platform\": \"webpush\", \"endpoint\", \"keys\": {\"p256dh\", \"auth\"}} or {\"platform\": \"sns\", \"endpoint_arn\"} (an SNS platform endpoint of an APNS, APNS_SANDBOX or GCM application)."
)]
struct RawPushTarget {
    platform: PushPlatform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<WebPushKeys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<ApnsEnvironment>,
}

impl PushTarget {
    pub fn platform(&self) -> PushPlatform {
        match self {
            PushTarget::Fcm { .. } => PushPlatform::Fcm,
            PushTarget::Apns { .. } => PushPlatform::Apns,
            PushTarget::WebPush { .. } => PushPlatform::WebPush,
            PushTarget::Sns { .. } => PushPlatform::Sns,
        }
    }

    /// The device token, the subscription endpoint for Web Push, the endpoint ARN for SNS.
    pub fn address(&self) -> &str {
        match self {
            PushTarget::Fcm { token } | PushTarget::Apns { token, .. } => token,
            PushTarget::WebPush { endpoint, .. } => endpoint,
            PushTarget::Sns { endpoint_arn, .. } => endpoint_arn,
        }
    }

    pub fn suppression_key(&self) -> String {
        format!("{}:{}", self.platform().as_str(), self.address())
    }

    fn from_raw(raw: RawPushTarget) -> Result<Self, String> {
        let no_extra = |field: &str, present: bool| {
            if present {
                Err(format!("`{field}` does not apply to platform `{}`", raw.platform.as_str()))
            } else {
                Ok(())
            }
        };
        if raw.platform != PushPlatform::Sns {
            no_extra("endpoint_arn", raw.endpoint_arn.is_some())?;
        }
        if raw.platform != PushPlatform::Apns {
            no_extra("environment", raw.environment.is_some())?;
        }
        match raw.platform {
            PushPlatform::Sns => {
                no_extra("token", raw.token.is_some())?;
                no_extra("endpoint", raw.endpoint.is_some())?;
                no_extra("keys", raw.keys.is_some())?;
                let arn =
                    raw.endpoint_arn.ok_or("an sns target needs `endpoint_arn`, the SNS platform endpoint ARN")?;
                let platform = sns_endpoint_platform(&arn)?;
                Ok(PushTarget::Sns { endpoint_arn: arn, platform })
            }
            PushPlatform::Fcm => {
                no_extra("endpoint", raw.endpoint.is_some())?;
                no_extra("keys", raw.keys.is_some())?;
                let token = raw.token.ok_or("an fcm target needs `token`, the FCM registration token")?;
                // Registration tokens are opaque but always long base64url-ish strings
                // with an optional `:` separator.
                let shape = (32..=4096).contains(&token.len())
                    && token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
                if !shape {
                    return Err(
                        "`token` is not an FCM registration token (32 to 4096 characters of A-Z a-z 0-9 - _ : .)"
                            .into(),
                    );
                }
                Ok(PushTarget::Fcm { token })
            }
            PushPlatform::Apns => {
                no_extra("endpoint", raw.endpoint.is_some())?;
                no_extra("keys", raw.keys.is_some())?;
                let token = raw.token.ok_or("an apns target needs `token`, the device token in hex")?;
                // 32 bytes today; Apple reserves the right to grow it, so allow up to 100 bytes.
                let shape = token.len() >= 64
                    && token.len() <= 200
                    && token.len() % 2 == 0
                    && token.chars().all(|c| c.is_ascii_hexdigit());
                if !shape {
                    return Err("`token` is not an APNs device token (an even number, 64 to 200, of hex digits)".into());
                }
                Ok(PushTarget::Apns { token: token.to_ascii_lowercase(), environment: raw.environment })
            }
            PushPlatform::WebPush => {
                no_extra("token", raw.token.is_some())?;
                let endpoint = raw.endpoint.ok_or("a webpush target needs `endpoint`, the subscription URL")?;
                check_https_url(&endpoint)?;
                let keys = raw.keys.ok_or("a webpush target needs `keys` with `p256dh` and `auth`")?;
                let p256dh = decode_b64url(&keys.p256dh).ok_or("`keys.p256dh` is not base64url")?;
                if p256dh.len() != 65 || p256dh[0] != 4 {
                    return Err("`keys.p256dh` must be an uncompressed P-256 public key (65 bytes, base64url)".into());
                }
                let auth = decode_b64url(&keys.auth).ok_or("`keys.auth` is not base64url")?;
                if auth.len() != 16 {
                    return Err("`keys.auth` must be a 16-byte secret (base64url)".into());
                }
                Ok(PushTarget::WebPush { endpoint, keys })
            }
        }
    }

    fn to_raw(&self) -> RawPushTarget {
        match self {
            PushTarget::Fcm { token } => RawPushTarget {
                platform: PushPlatform::Fcm,
                token: Some(token.clone()),
                endpoint: None,
                keys: None,
                endpoint_arn: None,
                environment: None,
            },
            PushTarget::Apns { token, environment } => RawPushTarget {
                platform: PushPlatform::Apns,
                token: Some(token.clone()),
                endpoint: None,
                keys: None,
                endpoint_arn: None,
                environment: *environment,
            },
            PushTarget::WebPush { endpoint, keys } => RawPushTarget {
                platform: PushPlatform::WebPush,
                token: None,
                endpoint: Some(endpoint.clone()),
                keys: Some(keys.clone()),
                endpoint_arn: None,
                environment: None,
            },
            PushTarget::Sns { endpoint_arn, .. } => RawPushTarget {
                platform: PushPlatform::Sns,
                token: None,
                endpoint: None,
                keys: None,
                endpoint_arn: Some(endpoint_arn.clone()),
                environment: None,
            },
        }
    }
}

/// The platform of an SNS endpoint ARN,
/// `arn:<partition>:sns:<region>:<account>:endpoint/<PLATFORM>/<application>/<id>`.
fn sns_endpoint_platform(arn: &str) -> Result<SnsPlatform, String> {
    const SHAPE: &str = "`endpoint_arn` is not an SNS platform endpoint ARN \
                         (arn:aws:sns:<region>:<account>:endpoint/<PLATFORM>/<application>/<id>)";
    let clean = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, partition, service, region, account, resource] = parts[..] else { return Err(SHAPE.into()) };
    let segments: Vec<&str> = resource.split('/').collect();
    let shape_ok = arn_word == "arn"
        && partition.starts_with("aws")
        && service == "sns"
        && clean(region)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && segments.len() == 4
        && segments[0] == "endpoint"
        && segments[2..].iter().all(|s| clean(s))
        && arn.len() <= 1024;
    if !shape_ok {
        return Err(SHAPE.into());
    }
    match segments[1] {
        "APNS" => Ok(SnsPlatform::Apns),
        "APNS_SANDBOX" => Ok(SnsPlatform::ApnsSandbox),
        "GCM" => Ok(SnsPlatform::Gcm),
        other if clean(other) && other.len() <= 32 => {
            Err(format!("SNS endpoints of platform `{other}` are not served (APNS, APNS_SANDBOX and GCM are)"))
        }
        _ => Err(SHAPE.into()),
    }
}

fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed).ok()
}

fn check_https_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("`endpoint` must be an https:// URL (the push service's subscription URL)")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("`endpoint` is not a valid https URL".into());
    }
    Ok(())
}

impl Serialize for PushTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PushTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawPushTarget::deserialize(d)?;
        PushTarget::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for PushTarget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PushTarget".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RawPushTarget::json_schema(generator)
    }
}
