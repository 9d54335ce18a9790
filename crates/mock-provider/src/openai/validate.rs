//! Strict request validation, as the real OpenAI API does it (same messages, params and codes
//! where known). Unknown top-level fields are rejected, except the mock's own `mock` field.

use serde_json::{Map, Value};

use super::error::ApiError;

/// Top-level fields the real Chat Completions API accepts.
pub(crate) const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "moderation",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

/// Top-level fields the real legacy Completions API accepts.
pub(crate) const COMPLETION_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "suffix",
    "temperature",
    "top_p",
    "user",
];

/// Top-level fields the real Embeddings API accepts.
pub(crate) const EMBEDDING_FIELDS: &[&str] =
    &["model", "input", "dimensions", "encoding_format", "user"];

/// The mock's own field, accepted everywhere.
pub(crate) const MOCK_FIELD: &str = "mock";

type Obj = Map<String, Value>;
type Res<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------------
// Error builders with OpenAI's wording.

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            type_name(got)
        ),
        Some(param),
        Some("invalid_type"),
    )
}

fn missing(param: &str) -> ApiError {
    ApiError::invalid(
        format!("Missing required parameter: '{param}'."),
        Some(param),
        Some("missing_required_parameter"),
    )
}

fn empty_array(param: &str) -> ApiError {
    ApiError::invalid(
        format!(
            "Invalid '{param}': empty array. Expected an array with minimum length 1, but got an \
             empty array instead."
        ),
        Some(param),
        Some("empty_array"),
    )
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        2 => format!("{} and {}", quoted[0], quoted[1]),
        n => format!("{}, and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

fn invalid_value(param: &str, value: &str, allowed: &[&str]) -> ApiError {
    ApiError::invalid(
        format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            quoted_list(allowed)
        ),
        Some(param),
        Some("invalid_value"),
    )
}

// ---------------------------------------------------------------------------------------------
// Field helpers. A JSON `null` counts as absent for every optional field, as with the real API.

fn opt<'a>(body: &'a Obj, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn opt_bool(body: &Obj, key: &str) -> Res<Option<bool>> {
    match opt(body, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid_type(key, "a boolean", v)),
    }
}

fn opt_str<'a>(body: &'a Obj, key: &str) -> Res<Option<&'a str>> {
    match opt(body, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(invalid_type(key, "a string", v)),
    }
}

fn opt_object<'a>(body: &'a Obj, key: &str) -> Res<Option<&'a Obj>> {
    match opt(body, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => Err(invalid_type(key, "an object", v)),
    }
}

fn opt_array<'a>(body: &'a Obj, key: &str) -> Res<Option<&'a [Value]>> {
    match opt(body, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(invalid_type(key, "an array", v)),
    }
}

fn opt_decimal(body: &Obj, key: &str, min: f64, max: f64) -> Res<Option<f64>> {
    match opt(body, key) {
        None => Ok(None),
        Some(v @ Value::Number(n)) => {
            let x = n
                .as_f64()
                .ok_or_else(|| invalid_type(key, "a decimal", v))?;
            if x < min {
                Err(ApiError::invalid(
                    format!(
                        "Invalid '{key}': decimal below minimum value. Expected a value >= {min}, \
                         but got {x} instead."
                    ),
                    Some(key),
                    Some("decimal_below_min_value"),
                ))
            } else if x > max {
                Err(ApiError::invalid(
                    format!(
                        "Invalid '{key}': decimal above maximum value. Expected a value <= {max}, \
                         but got {x} instead."
                    ),
                    Some(key),
                    Some("decimal_above_max_value"),
                ))
            } else {
                Ok(Some(x))
            }
        }
        Some(v) => Err(invalid_type(key, "a decimal", v)),
    }
}

fn opt_int(body: &Obj, key: &str, min: i64, max: Option<i64>) -> Res<Option<i64>> {
    match opt(body, key) {
        None => Ok(None),
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| invalid_type(key, "an integer", v))?;
            if n < min {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid '{key}': integer below minimum value. Expected a value >= {min}, \
                         but got {n} instead."
                    ),
                    Some(key),
                    Some("integer_below_min_value"),
                ));
            }
            if let Some(max) = max
                && n > max
            {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid '{key}': integer above maximum value. Expected a value <= {max}, \
                         but got {n} instead."
                    ),
                    Some(key),
                    Some("integer_above_max_value"),
                ));
            }
            Ok(Some(n))
        }
    }
}

fn opt_enum<'a>(body: &'a Obj, key: &str, allowed: &[&str]) -> Res<Option<&'a str>> {
    match opt_str(body, key)? {
        Some(s) if !allowed.contains(&s) => Err(invalid_value(key, s, allowed)),
        other => Ok(other),
    }
}

fn req_str<'a>(obj: &'a Obj, key: &str, param: &str) -> Res<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(missing(param)),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(invalid_type(param, "a string", v)),
    }
}

fn check_stop(body: &Obj) -> Res<()> {
    match opt(body, "stop") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) => {
            if a.len() > 4 {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid 'stop': array too long. Expected an array with maximum length 4, \
                         but got an array with length {} instead.",
                        a.len()
                    ),
                    Some("stop"),
                    Some("array_above_max_length"),
                ));
            }
            for (i, s) in a.iter().enumerate() {
                if !s.is_string() {
                    return Err(invalid_type(&format!("stop[{i}]"), "a string", s));
                }
            }
            Ok(())
        }
        Some(v) => Err(invalid_type(
            "stop",
            "one of a string or array of strings",
            v,
        )),
    }
}

fn check_logit_bias(body: &Obj) -> Res<()> {
    if let Some(bias) = opt_object(body, "logit_bias")? {
        for (token, v) in bias {
            let param = format!("logit_bias.{token}");
            let x = v
                .as_f64()
                .ok_or_else(|| invalid_type(&param, "a decimal", v))?;
            if !(-100.0..=100.0).contains(&x) {
                return Err(ApiError::invalid(
                    format!("Invalid '{param}': expected a value between -100 and 100."),
                    Some(&param),
                    Some("invalid_value"),
                ));
            }
        }
    }
    Ok(())
}

/// Rejects every top-level field the real API does not know, like
/// "Unrecognized request argument supplied: X".
pub(crate) fn check_known(body: &Obj, known: &[&str]) -> Res<()> {
    let unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| *k != MOCK_FIELD && !known.contains(k))
        .collect();
    match unknown.len() {
        0 => Ok(()),
        1 => Err(ApiError::invalid(
            format!("Unrecognized request argument supplied: {}", unknown[0]),
            None,
            None,
        )),
        _ => Err(ApiError::invalid(
            format!(
                "Unrecognized request arguments supplied: {}",
                unknown.join(", ")
            ),
            None,
            None,
        )),
    }
}

/// `model`: required, a string.
pub(crate) fn check_model(body: &Obj) -> Res<&str> {
    match body.get("model") {
        None | Some(Value::Null) => Err(ApiError::invalid(
            "you must provide a model parameter",
            None,
            None,
        )),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ApiError::invalid(
            "you must provide a model parameter",
            None,
            None,
        )),
        Some(v) => Err(invalid_type("model", "a string", v)),
    }
}

/// `n`: the mock produces exactly one choice.
fn check_n(body: &Obj) -> Res<()> {
    match opt_int(body, "n", 1, Some(128))? {
        Some(n) if n != 1 => Err(ApiError::invalid(
            format!("The mock provider only supports n=1 (got n={n})."),
            Some("n"),
            Some("unsupported_value"),
        )),
        _ => Ok(()),
    }
}

/// `stream` and `stream_options`: returns (stream, include_usage, include_obfuscation).
fn check_stream(body: &Obj) -> Res<(bool, bool, bool)> {
    let stream = opt_bool(body, "stream")?.unwrap_or(false);
    let mut include_usage = false;
    let mut include_obfuscation = true;
    if let Some(opts) = opt_object(body, "stream_options")? {
        if !stream {
            return Err(ApiError::invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                Some("stream_options"),
                None,
            ));
        }
        include_usage = opt_bool(opts, "include_usage")
            .map_err(|_| {
                invalid_type(
                    "stream_options.include_usage",
                    "a boolean",
                    &opts["include_usage"],
                )
            })?
            .unwrap_or(false);
        include_obfuscation = opt_bool(opts, "include_obfuscation")
            .map_err(|_| {
                invalid_type(
                    "stream_options.include_obfuscation",
                    "a boolean",
                    &opts["include_obfuscation"],
                )
            })?
            .unwrap_or(true);
    }
    Ok((stream, include_usage, include_obfuscation))
}

// ---------------------------------------------------------------------------------------------
// Chat Completions.

/// A function tool the request offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FunctionTool<'a> {
    pub name: &'a str,
    pub parameters: Option<&'a Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolChoice<'a> {
    None,
    Auto,
    Required,
    Function(&'a str),
    Allowed(Vec<&'a str>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema(Option<&'a Value>),
}

/// What the mock needs from a valid chat request.
#[derive(Debug)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Value],
    pub stream: bool,
    pub include_usage: bool,
    pub include_obfuscation: bool,
    pub tools: Vec<FunctionTool<'a>>,
    pub tool_choice: ToolChoice<'a>,
    pub response_format: ResponseFormat<'a>,
    pub max_tokens: Option<u64>,
}

const ROLES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "function",
    "tool",
    "developer",
];
const USER_PARTS: &[&str] = &["text", "image_url", "input_audio", "file"];
const ASSISTANT_PARTS: &[&str] = &["text", "refusal"];
const TEXT_PARTS: &[&str] = &["text"];

fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_name(name: &str, param: &str) -> Res<()> {
    if name.len() > 64 {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length 64, \
                 but got a string with length {} instead.",
                name.len()
            ),
            Some(param),
            Some("string_above_max_length"),
        ));
    }
    if !is_valid_tool_name(name) {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': string does not match pattern. Expected a string that \
                 matches the pattern '^[a-zA-Z0-9_-]+$'."
            ),
            Some(param),
            Some("invalid_value"),
        ));
    }
    Ok(())
}

/// Validates a content part of one of the `allowed` types.
fn check_part(part: &Value, param: &str, allowed: &[&str]) -> Res<()> {
    let Value::Object(obj) = part else {
        return Err(invalid_type(param, "an object", part));
    };
    let ty_param = format!("{param}.type");
    let ty = req_str(obj, "type", &ty_param)?;
    if !allowed.contains(&ty) {
        return Err(invalid_value(&ty_param, ty, allowed));
    }
    let field_obj = |field: &str| -> Res<&Obj> {
        let p = format!("{param}.{field}");
        match obj.get(field) {
            None | Some(Value::Null) => Err(missing(&p)),
            Some(Value::Object(o)) => Ok(o),
            Some(v) => Err(invalid_type(&p, "an object", v)),
        }
    };
    match ty {
        "text" => {
            req_str(obj, "text", &format!("{param}.text"))?;
        }
        "refusal" => {
            req_str(obj, "refusal", &format!("{param}.refusal"))?;
        }
        "image_url" => {
            let img = field_obj("image_url")?;
            req_str(img, "url", &format!("{param}.image_url.url"))?;
            if let Some(d) = img.get("detail").filter(|v| !v.is_null()) {
                let p = format!("{param}.image_url.detail");
                match d.as_str() {
                    Some("auto" | "low" | "high") => {}
                    Some(s) => return Err(invalid_value(&p, s, &["auto", "low", "high"])),
                    None => return Err(invalid_type(&p, "a string", d)),
                }
            }
        }
        "input_audio" => {
            let audio = field_obj("input_audio")?;
            req_str(audio, "data", &format!("{param}.input_audio.data"))?;
            req_str(audio, "format", &format!("{param}.input_audio.format"))?;
        }
        "file" => {
            field_obj("file")?;
        }
        _ => {}
    }
    Ok(())
}

/// Validates `content` (string or non-empty array of allowed parts).
fn check_content(content: &Value, param: &str, allowed: &[&str]) -> Res<()> {
    match content {
        Value::String(_) => Ok(()),
        Value::Array(parts) => {
            if parts.is_empty() {
                return Err(empty_array(param));
            }
            for (j, part) in parts.iter().enumerate() {
                check_part(part, &format!("{param}[{j}]"), allowed)?;
            }
            Ok(())
        }
        v => Err(invalid_type(
            param,
            "one of a string or array of objects",
            v,
        )),
    }
}

/// Validates an assistant message's `tool_calls`, returning their ids.
fn check_tool_calls<'a>(calls: &'a [Value], param: &str) -> Res<Vec<&'a str>> {
    let mut ids = Vec::with_capacity(calls.len());
    for (k, call) in calls.iter().enumerate() {
        let p = format!("{param}[{k}]");
        let Value::Object(obj) = call else {
            return Err(invalid_type(&p, "an object", call));
        };
        ids.push(req_str(obj, "id", &format!("{p}.id"))?);
        let ty = req_str(obj, "type", &format!("{p}.type"))?;
        match ty {
            "function" => {
                let fp = format!("{p}.function");
                let f = match obj.get("function") {
                    None | Some(Value::Null) => return Err(missing(&fp)),
                    Some(Value::Object(f)) => f,
                    Some(v) => return Err(invalid_type(&fp, "an object", v)),
                };
                req_str(f, "name", &format!("{fp}.name"))?;
                req_str(f, "arguments", &format!("{fp}.arguments"))?;
            }
            "custom" => {
                let cp = format!("{p}.custom");
                match obj.get("custom") {
                    Some(Value::Object(c)) => {
                        req_str(c, "name", &format!("{cp}.name"))?;
                        req_str(c, "input", &format!("{cp}.input"))?;
                    }
                    None | Some(Value::Null) => return Err(missing(&cp)),
                    Some(v) => return Err(invalid_type(&cp, "an object", v)),
                }
            }
            other => {
                return Err(invalid_value(
                    &format!("{p}.type"),
                    other,
                    &["function", "custom"],
                ));
            }
        }
    }
    Ok(ids)
}

/// Validates `messages`: shapes per role, and that tool results answer the tool calls of the
/// assistant message right before them (the real API enforces both directions).
pub(crate) fn check_messages(body: &Obj) -> Res<&[Value]> {
    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(a)) => a.as_slice(),
        Some(v) => return Err(invalid_type("messages", "an array", v)),
    };
    if messages.is_empty() {
        return Err(empty_array("messages"));
    }
    // Tool-call ids of the latest assistant message, and which are answered.
    let mut open: Vec<(&str, bool)> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let Value::Object(obj) = msg else {
            return Err(invalid_type(&p, "an object", msg));
        };
        let role_param = format!("{p}.role");
        let role = req_str(obj, "role", &role_param)?;
        if !ROLES.contains(&role) {
            return Err(invalid_value(&role_param, role, ROLES));
        }
        if let Some(name) = obj.get("name").filter(|v| !v.is_null())
            && !name.is_string()
        {
            return Err(invalid_type(&format!("{p}.name"), "a string", name));
        }
        let content_param = format!("{p}.content");
        let content = obj.get("content").filter(|v| !v.is_null());

        if role != "tool" {
            let unanswered: Vec<&str> = open
                .iter()
                .filter(|(_, answered)| !answered)
                .map(|(id, _)| *id)
                .collect();
            if !unanswered.is_empty() {
                return Err(unanswered_calls(&unanswered, i));
            }
            open.clear();
        }

        match role {
            "system" | "developer" | "user" => {
                let allowed = if role == "user" {
                    USER_PARTS
                } else {
                    TEXT_PARTS
                };
                match content {
                    None => return Err(missing(&content_param)),
                    Some(c) => check_content(c, &content_param, allowed)?,
                }
            }
            "assistant" => {
                let calls_param = format!("{p}.tool_calls");
                let calls = match obj.get("tool_calls").filter(|v| !v.is_null()) {
                    None => None,
                    Some(Value::Array(a)) => Some(a.as_slice()),
                    Some(v) => return Err(invalid_type(&calls_param, "an array", v)),
                };
                if let Some(calls) = calls {
                    if calls.is_empty() {
                        return Err(empty_array(&calls_param));
                    }
                    open = check_tool_calls(calls, &calls_param)?
                        .into_iter()
                        .map(|id| (id, false))
                        .collect();
                }
                if let Some(r) = obj.get("refusal").filter(|v| !v.is_null())
                    && !r.is_string()
                {
                    return Err(invalid_type(&format!("{p}.refusal"), "a string", r));
                }
                let has_alternative = calls.is_some()
                    || obj.get("function_call").is_some_and(|v| !v.is_null())
                    || obj.get("audio").is_some_and(|v| !v.is_null())
                    || obj.get("refusal").is_some_and(|v| !v.is_null());
                match content {
                    Some(c) => check_content(c, &content_param, ASSISTANT_PARTS)?,
                    None if has_alternative => {}
                    None => {
                        return Err(ApiError::invalid(
                            format!(
                                "Invalid value for '{content_param}': expected a string or an \
                                 array of content parts when 'tool_calls' is not set, but got \
                                 null instead."
                            ),
                            Some(&content_param),
                            Some("invalid_value"),
                        ));
                    }
                }
            }
            "tool" => {
                let id = req_str(obj, "tool_call_id", &format!("{p}.tool_call_id"))?;
                match content {
                    None => return Err(missing(&content_param)),
                    Some(c) => check_content(c, &content_param, TEXT_PARTS)?,
                }
                match open.iter_mut().find(|(open_id, _)| *open_id == id) {
                    Some(entry) => entry.1 = true,
                    None => {
                        return Err(ApiError::invalid(
                            "Invalid parameter: messages with role 'tool' must be a response to a \
                             preceeding message with 'tool_calls'.",
                            Some(&format!("messages.[{i}].role")),
                            None,
                        ));
                    }
                }
            }
            // Deprecated `function` role: a name and string content.
            _ => {
                req_str(obj, "name", &format!("{p}.name"))?;
                if let Some(c) = content
                    && !c.is_string()
                {
                    return Err(invalid_type(&content_param, "a string", c));
                }
            }
        }
    }
    let unanswered: Vec<&str> = open
        .iter()
        .filter(|(_, answered)| !answered)
        .map(|(id, _)| *id)
        .collect();
    if !unanswered.is_empty() {
        return Err(unanswered_calls(&unanswered, messages.len()));
    }
    Ok(messages)
}

fn unanswered_calls(ids: &[&str], at: usize) -> ApiError {
    ApiError::invalid(
        format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding \
             to each 'tool_call_id'. The following tool_call_ids did not have response messages: \
             {}",
            ids.join(", ")
        ),
        Some(&format!("messages.[{at}].role")),
        None,
    )
}

fn check_tools(body: &Obj) -> Res<Option<Vec<FunctionTool<'_>>>> {
    let Some(tools) = opt_array(body, "tools")? else {
        return Ok(None);
    };
    if tools.is_empty() {
        return Err(empty_array("tools"));
    }
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        let Value::Object(obj) = tool else {
            return Err(invalid_type(&p, "an object", tool));
        };
        let ty = req_str(obj, "type", &format!("{p}.type"))?;
        match ty {
            "function" => {
                let fp = format!("{p}.function");
                let f = match obj.get("function") {
                    None | Some(Value::Null) => return Err(missing(&fp)),
                    Some(Value::Object(f)) => f,
                    Some(v) => return Err(invalid_type(&fp, "an object", v)),
                };
                let name = req_str(f, "name", &format!("{fp}.name"))?;
                check_name(name, &format!("{fp}.name"))?;
                if let Some(d) = f.get("description").filter(|v| !v.is_null())
                    && !d.is_string()
                {
                    return Err(invalid_type(&format!("{fp}.description"), "a string", d));
                }
                let parameters = match f.get("parameters").filter(|v| !v.is_null()) {
                    None => None,
                    Some(v @ Value::Object(_)) => Some(v),
                    Some(v) => {
                        return Err(invalid_type(&format!("{fp}.parameters"), "an object", v));
                    }
                };
                if let Some(s) = f.get("strict").filter(|v| !v.is_null())
                    && !s.is_boolean()
                {
                    return Err(invalid_type(&format!("{fp}.strict"), "a boolean", s));
                }
                out.push(FunctionTool { name, parameters });
            }
            "custom" => {
                let cp = format!("{p}.custom");
                match obj.get("custom") {
                    Some(Value::Object(c)) => {
                        let name = req_str(c, "name", &format!("{cp}.name"))?;
                        check_name(name, &format!("{cp}.name"))?;
                    }
                    None | Some(Value::Null) => return Err(missing(&cp)),
                    Some(v) => return Err(invalid_type(&cp, "an object", v)),
                }
            }
            other => {
                return Err(invalid_value(
                    &format!("{p}.type"),
                    other,
                    &["function", "custom"],
                ));
            }
        }
    }
    Ok(Some(out))
}

fn named_function<'a>(obj: &'a Obj, param: &str) -> Res<&'a str> {
    let fp = format!("{param}.function");
    match obj.get("function") {
        Some(Value::Object(f)) => req_str(f, "name", &format!("{fp}.name")),
        None | Some(Value::Null) => Err(missing(&fp)),
        Some(v) => Err(invalid_type(&fp, "an object", v)),
    }
}

fn check_tool_choice<'a>(body: &'a Obj, tools: Option<&[FunctionTool<'a>]>) -> Res<ToolChoice<'a>> {
    let Some(choice) = opt(body, "tool_choice") else {
        return Ok(if tools.is_some() {
            ToolChoice::Auto
        } else {
            ToolChoice::None
        });
    };
    let Some(tools) = tools else {
        return Err(ApiError::invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are \
             specified.",
            Some("tool_choice"),
            None,
        ));
    };
    let known = |name: &str, param: &str| -> Res<()> {
        if tools.iter().any(|t| t.name == name) {
            Ok(())
        } else {
            Err(ApiError::invalid(
                format!("Invalid value for '{param}': no function named '{name}' in 'tools'."),
                Some(param),
                Some("invalid_value"),
            ))
        }
    };
    match choice {
        Value::String(s) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid_value(
                "tool_choice",
                other,
                &["none", "auto", "required"],
            )),
        },
        Value::Object(obj) => {
            let ty = req_str(obj, "type", "tool_choice.type")?;
            match ty {
                "function" => {
                    let name = named_function(obj, "tool_choice")?;
                    known(name, "tool_choice.function.name")?;
                    Ok(ToolChoice::Function(name))
                }
                "custom" => Ok(ToolChoice::Required),
                "allowed_tools" => {
                    let at = match obj.get("allowed_tools") {
                        Some(Value::Object(o)) => o,
                        None | Some(Value::Null) => {
                            return Err(missing("tool_choice.allowed_tools"));
                        }
                        Some(v) => {
                            return Err(invalid_type("tool_choice.allowed_tools", "an object", v));
                        }
                    };
                    let mode = opt_enum(at, "mode", &["auto", "required"])?;
                    let list = match at.get("tools") {
                        Some(Value::Array(a)) => a,
                        None | Some(Value::Null) => {
                            return Err(missing("tool_choice.allowed_tools.tools"));
                        }
                        Some(v) => {
                            return Err(invalid_type(
                                "tool_choice.allowed_tools.tools",
                                "an array",
                                v,
                            ));
                        }
                    };
                    let mut names = Vec::new();
                    for (i, t) in list.iter().enumerate() {
                        let p = format!("tool_choice.allowed_tools.tools[{i}]");
                        let Value::Object(o) = t else {
                            return Err(invalid_type(&p, "an object", t));
                        };
                        if o.get("type").and_then(Value::as_str) == Some("function") {
                            let name = named_function(o, &p)?;
                            known(name, &format!("{p}.function.name"))?;
                            names.push(name);
                        }
                    }
                    let _ = mode;
                    Ok(ToolChoice::Allowed(names))
                }
                other => Err(invalid_value(
                    "tool_choice.type",
                    other,
                    &["function", "custom", "allowed_tools"],
                )),
            }
        }
        v => Err(invalid_type("tool_choice", "one of a string or object", v)),
    }
}

fn check_response_format(body: &Obj) -> Res<ResponseFormat<'_>> {
    let Some(rf) = opt_object(body, "response_format")? else {
        return Ok(ResponseFormat::Text);
    };
    let ty = req_str(rf, "type", "response_format.type")?;
    match ty {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let js = match rf.get("json_schema") {
                Some(Value::Object(o)) => o,
                None | Some(Value::Null) => return Err(missing("response_format.json_schema")),
                Some(v) => return Err(invalid_type("response_format.json_schema", "an object", v)),
            };
            let name = req_str(js, "name", "response_format.json_schema.name")?;
            check_name(name, "response_format.json_schema.name")?;
            let schema = match js.get("schema").filter(|v| !v.is_null()) {
                None => None,
                Some(v @ Value::Object(_)) => Some(v),
                Some(v) => {
                    return Err(invalid_type(
                        "response_format.json_schema.schema",
                        "an object",
                        v,
                    ));
                }
            };
            Ok(ResponseFormat::JsonSchema(schema))
        }
        other => Err(invalid_value(
            "response_format.type",
            other,
            &["json_object", "json_schema", "text"],
        )),
    }
}

/// Validates a Chat Completions body the way the real API does.
pub(crate) fn check_chat(body: &Obj) -> Res<ChatRequest<'_>> {
    check_known(body, CHAT_FIELDS)?;
    let model = check_model(body)?;
    let messages = check_messages(body)?;
    let (stream, include_usage, include_obfuscation) = check_stream(body)?;
    check_n(body)?;
    opt_decimal(body, "temperature", 0.0, 2.0)?;
    opt_decimal(body, "top_p", 0.0, 1.0)?;
    opt_decimal(body, "frequency_penalty", -2.0, 2.0)?;
    opt_decimal(body, "presence_penalty", -2.0, 2.0)?;
    let max_tokens = opt_int(body, "max_tokens", 1, None)?;
    let max_completion_tokens = opt_int(body, "max_completion_tokens", 1, None)?;
    opt_bool(body, "logprobs")?;
    opt_int(body, "top_logprobs", 0, Some(20))?;
    opt_int(body, "seed", i64::MIN, None)?;
    check_stop(body)?;
    check_logit_bias(body)?;
    for key in ["user", "safety_identifier", "prompt_cache_key"] {
        opt_str(body, key)?;
    }
    opt_enum(body, "prompt_cache_retention", &["in_memory", "24h"])?;
    opt_bool(body, "store")?;
    if let Some(meta) = opt_object(body, "metadata")? {
        for (k, v) in meta {
            if !v.is_string() {
                return Err(invalid_type(&format!("metadata.{k}"), "a string", v));
            }
        }
    }
    opt_enum(
        body,
        "reasoning_effort",
        &["none", "minimal", "low", "medium", "high", "xhigh", "max"],
    )?;
    opt_enum(body, "verbosity", &["low", "medium", "high"])?;
    opt_enum(
        body,
        "service_tier",
        &["auto", "default", "flex", "scale", "priority", "fast"],
    )?;
    if let Some(modalities) = opt_array(body, "modalities")? {
        for (i, m) in modalities.iter().enumerate() {
            let p = format!("modalities[{i}]");
            match m.as_str() {
                Some("text" | "audio") => {}
                Some(s) => return Err(invalid_value(&p, s, &["text", "audio"])),
                None => return Err(invalid_type(&p, "a string", m)),
            }
        }
    }
    for key in [
        "audio",
        "prediction",
        "web_search_options",
        "prompt_cache_options",
    ] {
        opt_object(body, key)?;
    }
    opt_array(body, "functions")?;
    let tools = check_tools(body)?;
    if opt_bool(body, "parallel_tool_calls")?.is_some() && tools.is_none() {
        return Err(ApiError::invalid(
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when \
             'tools' are specified.",
            Some("parallel_tool_calls"),
            None,
        ));
    }
    let tool_choice = check_tool_choice(body, tools.as_deref())?;
    let response_format = check_response_format(body)?;
    Ok(ChatRequest {
        model,
        messages,
        stream,
        include_usage,
        include_obfuscation,
        tools: tools.unwrap_or_default(),
        tool_choice,
        response_format,
        max_tokens: max_completion_tokens
            .or(max_tokens)
            .and_then(|n| u64::try_from(n).ok()),
    })
}

/// Calls `f` with every piece of text in a message's `content` (string or text parts).
pub(crate) fn for_each_text<'a>(content: Option<&'a Value>, mut f: impl FnMut(&'a str)) {
    match content {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    f(t);
                }
            }
        }
        _ => {}
    }
}

/// The content of the last message whose role is `user`, if any (used for directives).
pub(crate) fn last_user_content(body: &Obj) -> Option<&Value> {
    body.get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
}

// ---------------------------------------------------------------------------------------------
// Legacy Completions.

/// What the mock needs from a valid legacy completions request.
#[derive(Debug)]
pub(crate) struct CompletionRequest<'a> {
    pub model: &'a str,
    /// One entry per prompt: its size in characters (token arrays count one per token).
    pub prompt_chars: Vec<usize>,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
}

fn is_token_array(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().all(|t| t.is_u64() || t.is_i64()))
}

pub(crate) fn check_completion(body: &Obj) -> Res<CompletionRequest<'_>> {
    check_known(body, COMPLETION_FIELDS)?;
    let model = check_model(body)?;
    let prompt_chars = match body.get("prompt") {
        None | Some(Value::Null) => return Err(missing("prompt")),
        Some(Value::String(s)) => vec![s.chars().count()],
        Some(Value::Array(items)) if items.is_empty() => return Err(empty_array("prompt")),
        Some(v @ Value::Array(items)) => {
            if is_token_array(v) {
                vec![items.len() * 4]
            } else if items.iter().all(Value::is_string) {
                items
                    .iter()
                    .map(|s| s.as_str().map_or(0, |s| s.chars().count()))
                    .collect()
            } else if items.iter().all(is_token_array) {
                items
                    .iter()
                    .map(|t| t.as_array().map_or(0, Vec::len) * 4)
                    .collect()
            } else {
                return Err(invalid_type(
                    "prompt",
                    "one of a string, array of strings, array of integers, or array of arrays of \
                     integers",
                    v,
                ));
            }
        }
        Some(v) => {
            return Err(invalid_type(
                "prompt",
                "one of a string, array of strings, array of integers, or array of arrays of \
                 integers",
                v,
            ));
        }
    };
    let (stream, include_usage, _) = check_stream(body)?;
    check_n(body)?;
    opt_int(body, "best_of", 1, Some(20))?;
    opt_bool(body, "echo")?;
    opt_int(body, "logprobs", 0, Some(5))?;
    let max_tokens = opt_int(body, "max_tokens", 0, None)?;
    opt_decimal(body, "temperature", 0.0, 2.0)?;
    opt_decimal(body, "top_p", 0.0, 1.0)?;
    opt_decimal(body, "frequency_penalty", -2.0, 2.0)?;
    opt_decimal(body, "presence_penalty", -2.0, 2.0)?;
    opt_int(body, "seed", i64::MIN, None)?;
    opt_str(body, "suffix")?;
    opt_str(body, "user")?;
    check_stop(body)?;
    check_logit_bias(body)?;
    Ok(CompletionRequest {
        model,
        prompt_chars,
        stream,
        include_usage,
        max_tokens: max_tokens.and_then(|n| u64::try_from(n).ok()),
    })
}

/// The last prompt string, for directives.
pub(crate) fn last_prompt_text(body: &Obj) -> Option<&str> {
    match body.get("prompt")? {
        Value::String(s) => Some(s),
        Value::Array(items) => items.iter().rev().find_map(Value::as_str),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings.

/// One embeddings input: its text (for the vector seed) or its tokens.
#[derive(Debug)]
pub(crate) enum EmbeddingInput<'a> {
    Text(&'a str),
    Tokens(&'a [Value]),
}

#[derive(Debug)]
pub(crate) struct EmbeddingRequest<'a> {
    pub model: &'a str,
    pub inputs: Vec<EmbeddingInput<'a>>,
    pub dimensions: usize,
    pub base64: bool,
}

fn invalid_input() -> ApiError {
    ApiError::invalid(
        "'$.input' is invalid. Please check the API reference: \
         https://platform.openai.com/docs/api-reference.",
        None,
        None,
    )
}

pub(crate) fn check_embeddings(body: &Obj) -> Res<EmbeddingRequest<'_>> {
    check_known(body, EMBEDDING_FIELDS)?;
    let model = check_model(body)?;
    let inputs = match body.get("input") {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::String(s)) if s.is_empty() => return Err(invalid_input()),
        Some(Value::String(s)) => vec![EmbeddingInput::Text(s)],
        Some(Value::Array(items)) if items.is_empty() || items.len() > 2048 => {
            return Err(invalid_input());
        }
        Some(v @ Value::Array(items)) => {
            if is_token_array(v) {
                vec![EmbeddingInput::Tokens(items)]
            } else {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) if !s.is_empty() => out.push(EmbeddingInput::Text(s)),
                        Value::Array(t) if !t.is_empty() && is_token_array(item) => {
                            out.push(EmbeddingInput::Tokens(t));
                        }
                        _ => return Err(invalid_input()),
                    }
                }
                out
            }
        }
        Some(_) => return Err(invalid_input()),
    };
    let dimensions = opt_int(body, "dimensions", 1, Some(8192))?
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(8);
    let base64 = opt_enum(body, "encoding_format", &["float", "base64"])? == Some("base64");
    opt_str(body, "user")?;
    Ok(EmbeddingRequest {
        model,
        inputs,
        dimensions,
        base64,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        match v {
            Value::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    fn chat_err(v: Value) -> ApiError {
        check_chat(&obj(v)).unwrap_err()
    }

    fn user() -> Value {
        json!([{"role":"user","content":"hi"}])
    }

    #[test]
    fn minimal_chat_is_valid() {
        let body = obj(json!({"model":"m","messages":user()}));
        let req = check_chat(&body).unwrap();
        assert_eq!(req.model, "m");
        assert!(!req.stream);
        assert_eq!(req.tool_choice, ToolChoice::None);
    }

    #[test]
    fn unknown_fields_rejected_but_mock_allowed() {
        let e = chat_err(json!({"model":"m","messages":user(),"provider":{"order":["x"]}}));
        assert_eq!(
            e.message,
            "Unrecognized request argument supplied: provider"
        );
        assert_eq!(e.status.as_u16(), 400);
        let e = chat_err(json!({"model":"m","messages":user(),"models":[],"transforms":[]}));
        assert_eq!(
            e.message,
            "Unrecognized request arguments supplied: models, transforms"
        );
        check_chat(&obj(
            json!({"model":"m","messages":user(),"mock":{"status":500}}),
        ))
        .unwrap();
    }

    #[test]
    fn model_and_messages_required() {
        let e = chat_err(json!({"messages":user()}));
        assert_eq!(e.message, "you must provide a model parameter");
        let e = chat_err(json!({"model":"m"}));
        assert_eq!(e.code, Some("missing_required_parameter"));
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = chat_err(json!({"model":"m","messages":[]}));
        assert_eq!(e.code, Some("empty_array"));
        let e = chat_err(json!({"model":5,"messages":user()}));
        assert_eq!(e.code, Some("invalid_type"));
    }

    #[test]
    fn bad_roles_and_shapes() {
        let e = chat_err(json!({"model":"m","messages":[{"role":"bot","content":"x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        assert_eq!(e.code, Some("invalid_value"));
        assert!(e.message.contains("'bot'"), "{}", e.message);
        let e = chat_err(json!({"model":"m","messages":[{"content":"x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = chat_err(json!({"model":"m","messages":[{"role":"user"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        let e = chat_err(json!({"model":"m","messages":[{"role":"user","content":5}]}));
        assert_eq!(e.code, Some("invalid_type"));
        let e = chat_err(json!({"model":"m","messages":[
            {"role":"user","content":[{"type":"image","source":{}}]}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
        let e = chat_err(json!({"model":"m","messages":[
            {"role":"system","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
        let e = chat_err(json!({"model":"m","messages":[{"role":"assistant","content":null}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        check_chat(&obj(json!({"model":"m","messages":[
            {"role":"developer","content":[{"type":"text","text":"be brief"}]},
            {"role":"user","content":[{"type":"text","text":"a"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AA","detail":"low"}},
                {"type":"input_audio","input_audio":{"data":"AA","format":"wav"}},
                {"type":"file","file":{"file_id":"file-1"}}]}]})))
        .unwrap();
    }

    #[test]
    fn tool_messages_must_answer_calls() {
        let call = json!({"role":"assistant","content":null,"tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]});
        check_chat(&obj(json!({"model":"m","messages":[
            {"role":"user","content":"q"}, call,
            {"role":"tool","tool_call_id":"call_1","content":"r"}]})))
        .unwrap();
        // No tool_call_id.
        let e = chat_err(json!({"model":"m","messages":[
            {"role":"user","content":"q"}, call, {"role":"tool","content":"r"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[2].tool_call_id"));
        // A tool message without a preceding call.
        let e = chat_err(json!({"model":"m","messages":[
            {"role":"user","content":"q"}, {"role":"tool","tool_call_id":"x","content":"r"}]}));
        assert!(
            e.message
                .contains("must be a response to a preceeding message")
        );
        // A call left unanswered.
        let e = chat_err(json!({"model":"m","messages":[
            {"role":"user","content":"q"}, call, {"role":"user","content":"again"}]}));
        assert!(e.message.contains("did not have response messages: call_1"));
        // Arguments must be a string.
        let e = chat_err(json!({"model":"m","messages":[
            {"role":"user","content":"q"},
            {"role":"assistant","tool_calls":[
                {"id":"c","type":"function","function":{"name":"f","arguments":{}}}]},
            {"role":"tool","tool_call_id":"c","content":"r"}]}));
        assert_eq!(
            e.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
    }

    #[test]
    fn params_checked() {
        let base = || json!({"model":"m","messages":user()});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert_eq!(
            chat_err(with("n", json!(2))).code,
            Some("unsupported_value")
        );
        assert_eq!(
            chat_err(with("temperature", json!(3))).code,
            Some("decimal_above_max_value")
        );
        assert_eq!(
            chat_err(with("max_tokens", json!(0))).code,
            Some("integer_below_min_value")
        );
        assert_eq!(
            chat_err(with("stream", json!("yes"))).code,
            Some("invalid_type")
        );
        let e = chat_err(with("stream_options", json!({"include_usage":true})));
        assert_eq!(e.param.as_deref(), Some("stream_options"));
        assert_eq!(
            chat_err(with("stop", json!(["a", "b", "c", "d", "e"])))
                .param
                .as_deref(),
            Some("stop")
        );
        assert_eq!(
            chat_err(with("tool_choice", json!("auto")))
                .param
                .as_deref(),
            Some("tool_choice")
        );
        assert_eq!(chat_err(with("tools", json!([]))).code, Some("empty_array"));
        let e = chat_err(with(
            "tools",
            json!([{"type":"function","function":{"name":"bad name"}}]),
        ));
        assert_eq!(e.param.as_deref(), Some("tools[0].function.name"));
        let long = "a".repeat(65);
        let e = chat_err(with(
            "tools",
            json!([{"type":"function","function":{"name":long}}]),
        ));
        assert_eq!(e.code, Some("string_above_max_length"));
        assert_eq!(
            chat_err(with("response_format", json!({"type":"xml"})))
                .param
                .as_deref(),
            Some("response_format.type")
        );
        assert_eq!(
            chat_err(with("parallel_tool_calls", json!(true)))
                .param
                .as_deref(),
            Some("parallel_tool_calls")
        );
        // Nulls are absent.
        check_chat(&obj(with("temperature", Value::Null))).unwrap();
    }

    #[test]
    fn stream_and_tools_parsed() {
        let body = obj(json!({"model":"m","messages":user(),"stream":true,
            "stream_options":{"include_usage":true,"include_obfuscation":false},
            "tools":[{"type":"function","function":{"name":"a"}},
                     {"type":"function","function":{"name":"b","parameters":{"type":"object"}}}],
            "tool_choice":{"type":"function","function":{"name":"b"}},
            "max_tokens":5,"max_completion_tokens":7}));
        let req = check_chat(&body).unwrap();
        assert!(req.stream && req.include_usage && !req.include_obfuscation);
        assert_eq!(req.tools.len(), 2);
        assert_eq!(req.tool_choice, ToolChoice::Function("b"));
        assert_eq!(req.max_tokens, Some(7));
        let body = obj(json!({"model":"m","messages":user(),
            "tools":[{"type":"function","function":{"name":"a"}}],
            "tool_choice":{"type":"function","function":{"name":"zzz"}}}));
        assert!(check_chat(&body).is_err());
    }

    #[test]
    fn completions_and_embeddings() {
        let b = obj(json!({"model":"m","prompt":["ab","cde"]}));
        let r = check_completion(&b).unwrap();
        assert_eq!(r.prompt_chars, vec![2, 3]);
        let b = obj(json!({"model":"m","prompt":[1,2,3]}));
        let r = check_completion(&b).unwrap();
        assert_eq!(r.prompt_chars, vec![12]);
        assert!(check_completion(&obj(json!({"model":"m"}))).is_err());
        assert!(check_completion(&obj(json!({"model":"m","prompt":"x","messages":[]}))).is_err());
        let b =
            obj(json!({"model":"e","input":["a","b"],"dimensions":3,"encoding_format":"base64"}));
        let r = check_embeddings(&b).unwrap();
        assert_eq!(r.inputs.len(), 2);
        assert_eq!(r.dimensions, 3);
        assert!(r.base64);
        assert!(check_embeddings(&obj(json!({"model":"e","input":""}))).is_err());
        assert!(check_embeddings(&obj(json!({"model":"e","input":[]}))).is_err());
        assert!(
            check_embeddings(&obj(
                json!({"model":"e","input":"x","encoding_format":"hex"})
            ))
            .is_err()
        );
    }
}
