//! The catalog: which models exist, which providers serve each, at what price.
//!
//! The built-in catalog (`catalog/models.toml`, public list prices) is compiled into the
//! binary; a config's `[[models]]` use the same schema and replace built-in entries with
//! the same `id`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::pricing::Pricing;

const BUILTIN: &str = include_str!("../catalog/models.toml");

/// One provider's offer of a model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Slug of a configured provider (`[providers.<slug>]`).
    pub provider: String,
    /// The provider's own name for the model.
    pub model: String,
    pub pricing: Pricing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// `"allow"` or `"deny"`: whether the provider may train on or retain prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdr: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_parameters: Option<Vec<String>>,
}

/// A model, in the shape of OpenRouter's model list (minus computed fields).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `author/slug`.
    pub id: String,
    pub name: String,
    pub context_length: u64,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugging_face_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default = "default_text")]
    pub input_modalities: Vec<String>,
    #[serde(default = "default_text")]
    pub output_modalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruct_type: Option<String>,
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
}

fn default_text() -> Vec<String> {
    vec!["text".to_string()]
}

impl ModelSpec {
    /// OpenRouter's `architecture.modality`, e.g. `text+image->text`.
    pub fn modality(&self) -> String {
        format!(
            "{}->{}",
            self.input_modalities.join("+"),
            self.output_modalities.join("+")
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    models: Vec<ModelSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("built-in catalog is invalid: {0}")]
    Builtin(String),
    #[error("model {id:?}: {problem}")]
    Invalid { id: String, problem: String },
}

/// The merged catalog, indexed by model id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    models: Vec<ModelSpec>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// The built-in catalog alone.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let file: CatalogFile =
            toml::from_str(BUILTIN).map_err(|e| CatalogError::Builtin(e.to_string()))?;
        Catalog::from_models(file.models)
    }

    /// Build from a list; later entries with the same id replace earlier ones.
    pub fn from_models(models: Vec<ModelSpec>) -> Result<Catalog, CatalogError> {
        let mut c = Catalog::default();
        for m in models {
            c.upsert(m)?;
        }
        Ok(c)
    }

    /// Add a model, replacing one with the same id.
    pub fn upsert(&mut self, m: ModelSpec) -> Result<(), CatalogError> {
        validate(&m)?;
        match self.index.get(&m.id) {
            Some(&i) => self.models[i] = m,
            None => {
                self.index.insert(m.id.clone(), self.models.len());
                self.models.push(m);
            }
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&ModelSpec> {
        self.index.get(id).map(|&i| &self.models[i])
    }

    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

fn validate(m: &ModelSpec) -> Result<(), CatalogError> {
    let bad = |problem: String| CatalogError::Invalid {
        id: m.id.clone(),
        problem,
    };
    if m.id.is_empty() {
        return Err(bad("`id` must not be empty".into()));
    }
    if m.id.contains(char::is_whitespace) || m.id.contains(':') {
        return Err(bad(
            "`id` must not contain whitespace or ':' (':' starts a variant suffix)".into(),
        ));
    }
    if m.name.is_empty() {
        return Err(bad("`name` must not be empty".into()));
    }
    for (i, e) in m.endpoints.iter().enumerate() {
        if e.provider.is_empty() || e.model.is_empty() {
            return Err(bad(format!(
                "endpoints[{i}] needs a non-empty `provider` and `model`"
            )));
        }
        if let Some(dc) = &e.data_collection
            && dc != "allow"
            && dc != "deny"
        {
            return Err(bad(format!(
                "endpoints[{i}].data_collection must be \"allow\" or \"deny\", got {dc:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads_and_is_sane() {
        let c = Catalog::builtin().unwrap();
        assert!(c.len() >= 20, "only {} models", c.len());
        for m in c.models() {
            assert!(!m.endpoints.is_empty(), "{} has no endpoints", m.id);
        }
        assert!(c.get("openai/gpt-4o-mini").is_some());
    }

    #[test]
    fn override_replaces_by_id() {
        let mut c = Catalog::builtin().unwrap();
        let n = c.len();
        let m: ModelSpec = toml::from_str(
            r#"
id = "openai/gpt-4o-mini"
name = "Mine"
context_length = 1000
[[endpoints]]
provider = "local"
model = "x"
pricing = { prompt = "0", completion = "0" }
"#,
        )
        .unwrap();
        c.upsert(m).unwrap();
        assert_eq!(c.len(), n);
        assert_eq!(c.get("openai/gpt-4o-mini").unwrap().name, "Mine");
    }

    #[test]
    fn rejects_bad_entries() {
        let e = toml::from_str::<ModelSpec>("id='a/b'\nname='x'\ncontext_length=1\nbogus=1")
            .unwrap_err();
        assert!(e.to_string().contains("bogus"));
        let m: ModelSpec = toml::from_str("id='a/b:free'\nname='x'\ncontext_length=1").unwrap();
        assert!(Catalog::from_models(vec![m]).is_err());
    }
}
