//! A Note per media on the sender's Contact or Lead (`note = true`), titled with the message id
//! so it is found again: `state note:{message_id}` is `writing` before the create and `done`
//! after; a retry that finds `writing` (the answer was lost) looks the titles up with COQL before
//! writing, so no Note is made twice.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{Delivered, Error, MediaRecord, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zoho;
use crate::api::{MAX_RECORDS, any_of};
use crate::matching::Parent;
use crate::rules::describe;

pub fn note_title(r: &MediaRecord) -> String {
    format!("WhatsApp {} · {}", r.media_type.as_str(), r.message_id)
}

/// Customer text (a caption, a file name, a profile name) as Zoho shows it: on one line, and
/// with no `<` or `>`, so no screen that renders a note or a name as HTML can take it for markup.
pub fn inert(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('<', "‹")
        .replace('>', "›")
}

/// The Note's text: the link first, then what sales staff want to know before they play it.
/// Customer text (caption, file name) stays on its own line.
pub fn note_content(r: &MediaRecord) -> String {
    let one_line = inert;
    let mut lines = vec![
        r.rendition_url
            .clone()
            .unwrap_or_else(|| r.file_url.clone()),
        format!(
            "{} · {} · {} bytes{}",
            r.media_type.as_str(),
            r.mime_type,
            r.size_bytes,
            r.length().map(|l| format!(" · {l}")).unwrap_or_default()
        ),
    ];
    if !r.tags.is_empty() {
        lines.push(format!("Tags: {}", r.tags.join(", ")));
    }
    if let Some(c) = r.caption.as_deref().map(one_line).filter(|c| !c.is_empty()) {
        lines.push(format!("Caption: {c}"));
    }
    if let Some(f) = r
        .file_name
        .as_deref()
        .map(one_line)
        .filter(|f| !f.is_empty())
    {
        lines.push(format!("File: {f}"));
    }
    lines.join("\n")
}

fn note_key(r: &MediaRecord) -> String {
    format!("note:{}", r.message_id)
}

impl Zoho {
    pub(crate) async fn add_notes(
        &self,
        batch: &[MediaRecord],
        parents: &HashMap<String, Result<Parent>>,
        out: &mut [Result<Delivered>],
    ) {
        let mut todo: Vec<(usize, &Parent)> = Vec::new();
        let mut unsure: Vec<usize> = Vec::new();
        for (n, r) in batch.iter().enumerate() {
            let Some(Ok(parent)) = parents.get(r.sender.as_str()) else {
                continue;
            };
            if out[n].is_err() {
                continue;
            }
            match self.state.get_state(&self.name, &note_key(r)).await {
                Ok(Some(s)) if s == "done" => {}
                Ok(Some(_)) => {
                    unsure.push(n);
                    todo.push((n, parent));
                }
                Ok(None) => todo.push((n, parent)),
                Err(e) => out[n] = Err(e),
            }
        }
        if !unsure.is_empty() {
            let titles: Vec<String> = unsure.iter().map(|n| note_title(&batch[*n])).collect();
            let found = match self.notes_titled(&titles).await {
                Ok(f) => f,
                Err(e) => {
                    for n in &unsure {
                        out[*n] = Err(e.for_another());
                    }
                    return;
                }
            };
            for n in &unsure {
                if found.contains(&note_title(&batch[*n])) {
                    self.mark(&batch[*n], "done").await;
                }
            }
            todo.retain(|(n, _)| !found.contains(&note_title(&batch[*n])));
        }
        for chunk in todo.chunks(MAX_RECORDS) {
            for (n, _) in chunk {
                self.mark(&batch[*n], "writing").await;
            }
            let data: Vec<Value> = chunk
                .iter()
                .map(|(n, p)| {
                    let r = &batch[*n];
                    json!({"Note_Title": note_title(r), "Note_Content": note_content(r),
                        "Parent_Id": {"module": {"api_name": p.module}, "id": p.id}})
                })
                .collect();
            let written = self
                .api
                .write(
                    Method::POST,
                    "/Notes",
                    &json!({ "data": data }),
                    Repeat::Once,
                )
                .await;
            for (k, (n, _)) in chunk.iter().enumerate() {
                match &written {
                    Ok(results) if results.get(k).is_some_and(|r| r["status"] == "success") => {
                        self.mark(&batch[*n], "done").await;
                    }
                    Ok(results) => {
                        out[*n] = Err(Error::permanent(format!(
                            "the media record is written, but Zoho refused its Note: {}",
                            describe(results.get(k).unwrap_or(&Value::Null))
                        )));
                    }
                    Err(e) => out[*n] = Err(e.for_another()),
                }
            }
        }
    }

    async fn mark(&self, r: &MediaRecord, how: &str) {
        // Unrecorded, a lost answer costs a COQL look on the retry (or, if "done" is lost, one).
        let _ = self.state.put_state(&self.name, &note_key(r), how).await;
    }

    /// Which of `titles` Notes already hold.
    async fn notes_titled(&self, titles: &[String]) -> Result<HashSet<String>> {
        let Some(criteria) = any_of(&["Note_Title"], titles) else {
            return Ok(HashSet::new());
        };
        let rows = self
            .api
            .coql_all(&format!(
                "select id, Note_Title from Notes where {criteria}"
            ))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r["Note_Title"].as_str().map(str::to_owned))
            .collect())
    }
}
