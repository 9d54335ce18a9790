//! The account API in OpenRouter's shapes: key management (admin key), the calling key's
//! status, credits, and generation stats.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_store::{KeyPatch, KeyRecord, KeyUsage, LimitReset, NewKey};

use crate::accounts::Accounts;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

fn accounts(s: &AppState) -> Result<&std::sync::Arc<Accounts>, ApiError> {
    s.accounts.as_ref().ok_or_else(|| {
        ApiError::NotFound("Keys and the ledger need [storage]; none is configured".into())
    })
}

fn admin(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Admin => Ok(()),
        Principal::Key(_) => Err(ApiError::Forbidden(
            "This endpoint needs the admin (management) key".into(),
        )),
    }
}

fn usd(d: Decimal) -> Value {
    // JSON numbers: the exact decimal rendered as a number.
    serde_json::from_str(&d.normalize().to_string()).unwrap_or_else(|_| json!(d.to_f64()))
}

/// RFC 3339 UTC time, from the same civil-date routine SigV4 uses.
fn rfc3339(unix: i64) -> String {
    let d = switchyard_translate::bedrock::sigv4::amz_date(unix.max(0) as u64); // YYYYMMDDTHHMMSSZ
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    )
}

fn key_object(k: &KeyRecord, u: &KeyUsage, window_spend: Decimal) -> Value {
    json!({
        "hash": k.hash,
        "name": k.name,
        "label": k.label,
        "disabled": k.disabled,
        "limit": k.limit.map(usd),
        "limit_remaining": k.limit.map(|l| usd((l - window_spend).max(Decimal::ZERO))),
        "limit_reset": k.limit_reset.map(LimitReset::as_str),
        "include_byok_in_limit": false,
        "usage": usd(u.total),
        "usage_daily": usd(u.daily),
        "usage_weekly": usd(u.weekly),
        "usage_monthly": usd(u.monthly),
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "created_at": rfc3339(k.created_at),
        "updated_at": k.updated_at.map(rfc3339),
        "expires_at": null,
        "creator_user_id": null,
        "rate_limit": {
            "requests_per_minute": k.rate_limit_rpm,
            "tokens_per_minute": k.rate_limit_tpm,
        },
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn key_json(a: &Accounts, k: KeyRecord) -> Result<Value, ApiError> {
    let hash = k.hash.clone();
    let now = now_unix();
    let usage = a
        .run(move |s| Box::pin(async move { s.key_usage(&hash, now).await }))
        .await?;
    let window = match k.limit_reset {
        None => usage.total,
        Some(LimitReset::Daily) => usage.daily,
        Some(LimitReset::Weekly) => usage.weekly,
        Some(LimitReset::Monthly) => usage.monthly,
    };
    Ok(key_object(&k, &usage, window))
}

fn parse_limit(v: &Value) -> Result<Option<Decimal>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .to_string()
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .map(Some)
            .map_err(|_| ApiError::BadRequest("`limit` must be a number of USD".into())),
        Value::String(s) => s
            .parse::<Decimal>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest("`limit` must be a number of USD".into())),
        _ => Err(ApiError::BadRequest(
            "`limit` must be a number of USD or null".into(),
        )),
    }
    .and_then(|l| match l {
        Some(d) if d.is_sign_negative() => {
            Err(ApiError::BadRequest("`limit` must not be negative".into()))
        }
        other => Ok(other),
    })
}

/// A field of a PATCH: absent (`None`), cleared (`Some(None)`) or set.
type Change<T> = Option<Option<T>>;

/// `rate_limit: {"requests_per_minute": n|null, "tokens_per_minute": n|null}`.
fn parse_rate_limit(v: Option<&Value>) -> Result<(Change<u32>, Change<u64>), ApiError> {
    let Some(v) = v else {
        return Ok((None, None));
    };
    let Some(o) = v.as_object() else {
        return Err(ApiError::BadRequest(
            "`rate_limit` must be an object".into(),
        ));
    };
    let field = |name: &str| -> Result<Option<Option<u64>>, ApiError> {
        match o.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(x) => x
                .as_u64()
                .filter(|n| *n > 0)
                .map(|n| Some(Some(n)))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "`rate_limit.{name}` must be a positive integer or null"
                    ))
                }),
        }
    };
    let rpm =
        field("requests_per_minute")?.map(|r| r.map(|n| u32::try_from(n).unwrap_or(u32::MAX)));
    Ok((rpm, field("tokens_per_minute")?))
}

fn parse_reset(v: &Value) -> Result<Option<LimitReset>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => LimitReset::parse(s).map(Some).ok_or_else(|| {
            ApiError::BadRequest(
                "`limit_reset` must be \"daily\", \"weekly\", \"monthly\" or null".into(),
            )
        }),
        _ => Err(ApiError::BadRequest(
            "`limit_reset` must be a string or null".into(),
        )),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    include_disabled: Option<String>,
}

/// `GET /api/v1/keys`.
pub async fn list_keys(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    admin(&p)?;
    let a = accounts(&s)?;
    let include = q.include_disabled.as_deref() == Some("true");
    let offset = q.offset.unwrap_or(0);
    let keys = a
        .run(move |st| Box::pin(async move { st.list_keys(offset, 100, include).await }))
        .await?;
    let mut data = Vec::with_capacity(keys.len());
    for k in keys {
        data.push(key_json(a, k).await?);
    }
    Ok(Json(json!({"data": data})).into_response())
}

/// `POST /api/v1/keys`: 201 with the plaintext key, shown this once.
pub async fn create_key(
    State(s): State<AppState>,
    p: Principal,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    admin(&p)?;
    let a = accounts(&s)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON in request body: {e}")))?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("`name` is required".into()))?
        .to_string();
    let new = NewKey {
        name,
        limit: parse_limit(v.get("limit").unwrap_or(&Value::Null))?,
        limit_reset: parse_reset(v.get("limit_reset").unwrap_or(&Value::Null))?,
        rate_limit_rpm: None,
        rate_limit_tpm: None,
    };
    let (rpm, tpm) = parse_rate_limit(v.get("rate_limit"))?;
    let new = NewKey {
        rate_limit_rpm: rpm.flatten(),
        rate_limit_tpm: tpm.flatten(),
        ..new
    };
    let (rec, plaintext) = a
        .run(move |st| Box::pin(async move { st.create_key(new).await }))
        .await?;
    let data = key_json(a, rec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": data, "key": plaintext})),
    )
        .into_response())
}

/// `GET /api/v1/keys/{hash}`.
pub async fn get_key(
    State(s): State<AppState>,
    p: Principal,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    admin(&p)?;
    let a = accounts(&s)?;
    let h = hash.clone();
    let rec = a
        .run(move |st| Box::pin(async move { st.get_key(&h).await }))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Key {hash} not found")))?;
    Ok(Json(json!({"data": key_json(a, rec).await?})).into_response())
}

/// `PATCH /api/v1/keys/{hash}`: takes effect at once on this node.
pub async fn update_key(
    State(s): State<AppState>,
    p: Principal,
    Path(hash): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    admin(&p)?;
    let a = accounts(&s)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON in request body: {e}")))?;
    let patch = KeyPatch {
        name: match v.get("name") {
            None => None,
            Some(Value::String(n)) if !n.trim().is_empty() => Some(n.clone()),
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "`name` must be a non-empty string".into(),
                ));
            }
        },
        limit: v.get("limit").map(parse_limit).transpose()?,
        limit_reset: v.get("limit_reset").map(parse_reset).transpose()?,
        disabled: match v.get("disabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ApiError::BadRequest("`disabled` must be a boolean".into())),
        },
        rate_limit_rpm: None,
        rate_limit_tpm: None,
    };
    let (rpm, tpm) = parse_rate_limit(v.get("rate_limit"))?;
    let patch = KeyPatch {
        rate_limit_rpm: rpm,
        rate_limit_tpm: tpm,
        ..patch
    };
    let h = hash.clone();
    let rec = a
        .run(move |st| Box::pin(async move { st.update_key(&h, patch).await }))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Key {hash} not found")))?;
    a.key_changed(&hash).await;
    Ok(Json(json!({"data": key_json(a, rec).await?})).into_response())
}

/// `DELETE /api/v1/keys/{hash}`: the key stops working at once on this node.
pub async fn delete_key(
    State(s): State<AppState>,
    p: Principal,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    admin(&p)?;
    let a = accounts(&s)?;
    let h = hash.clone();
    let deleted = a
        .run(move |st| Box::pin(async move { st.delete_key(&h).await }))
        .await?;
    a.key_changed(&hash).await;
    if !deleted {
        return Err(ApiError::NotFound(format!("Key {hash} not found")));
    }
    Ok(Json(json!({"deleted": true})).into_response())
}

/// `GET /api/v1/key` (and `/api/v1/auth/key`): the calling key.
pub async fn current_key(State(s): State<AppState>, p: Principal) -> Result<Response, ApiError> {
    let a = accounts(&s)?;
    match p {
        Principal::Admin => Ok(Json(json!({"data": {
            "label": "admin", "limit": null, "limit_remaining": null, "limit_reset": null, "usage": 0,
            "usage_daily": 0, "usage_weekly": 0, "usage_monthly": 0, "is_free_tier": false,
            "is_provisioning_key": true, "is_management_key": true, "include_byok_in_limit": false,
        }}))
        .into_response()),
        Principal::Key(k) => {
            let rec = k.read();
            let mut data = key_json(a, rec).await?;
            if let Some(o) = data.as_object_mut() {
                o.remove("hash");
                o.insert("is_free_tier".into(), json!(false));
                o.insert("is_provisioning_key".into(), json!(false));
                o.insert("is_management_key".into(), json!(false));
                o.insert("rate_limit".into(), json!({"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."}));
            }
            Ok(Json(json!({"data": data})).into_response())
        }
    }
}

/// `GET /api/v1/credits`.
pub async fn credits(State(s): State<AppState>, _p: Principal) -> Result<Response, ApiError> {
    let a = accounts(&s)?;
    let used = a
        .run(|st| Box::pin(async move { st.total_usage().await }))
        .await?;
    let total = a.credits.map_or(Value::Null, usd);
    Ok(Json(json!({"data": {"total_credits": total, "total_usage": usd(used)}})).into_response())
}

#[derive(Deserialize)]
pub struct GenerationQuery {
    id: Option<String>,
}

/// `GET /api/v1/generation?id=gen-…`: visible only to the key that made it (and the admin).
pub async fn generation(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<GenerationQuery>,
) -> Result<Response, ApiError> {
    let a = accounts(&s)?;
    let id =
        q.id.filter(|i| !i.is_empty())
            .ok_or_else(|| ApiError::BadRequest("`id` is required".into()))?;
    let lookup = id.clone();
    let rec = a
        .run(move |st| Box::pin(async move { st.get_generation(&lookup).await }))
        .await?;
    let visible = match (&rec, &p) {
        (Some(_), Principal::Admin) => true,
        (Some(r), Principal::Key(k)) => r.key_hash.as_deref() == Some(k.hash().as_str()),
        (None, _) => false,
    };
    let Some(g) = rec.filter(|_| visible) else {
        return Err(ApiError::NotFound(format!("Generation {id} not found")));
    };
    Ok(Json(json!({"data": {
        "id": g.id, "upstream_id": null, "request_id": g.id, "created_at": rfc3339(g.created_at),
        "model": g.model, "provider_name": g.provider_name, "provider_responses": null, "router": null,
        "origin": "", "http_referer": null, "user_agent": null, "app_id": null, "external_user": null,
        "api_type": if g.endpoint == "embeddings" { "embeddings" } else { "completions" },
        "streamed": g.streamed, "cancelled": g.cancelled,
        "finish_reason": g.finish_reason, "native_finish_reason": g.native_finish_reason,
        "tokens_prompt": g.tokens_prompt, "tokens_completion": g.tokens_completion,
        "native_tokens_prompt": g.tokens_prompt, "native_tokens_completion": g.tokens_completion,
        "native_tokens_reasoning": g.native_tokens_reasoning, "native_tokens_cached": g.native_tokens_cached,
        "num_media_prompt": null, "num_media_completion": null, "num_search_results": null,
        "total_cost": usd(g.total_cost), "usage": usd(g.total_cost), "upstream_inference_cost": usd(g.total_cost),
        "cache_discount": null, "is_byok": false,
        "latency": g.latency_ms, "generation_time": g.generation_time_ms, "moderation_latency": null,
        "status": g.status, "usage_estimated": g.usage_estimated,
    }}))
    .into_response())
}
