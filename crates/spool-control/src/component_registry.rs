//! Registered components (`spool component ...`): registering a version, checked as far as it
//! can be before a pipeline uses it; listing, showing by version or label; archiving and
//! restoring a version or a whole name; and resolving the `azureml:` references of pipeline
//! nodes.
//!
//! Components are workspace-wide, as in Azure ML: every user of the server sees and may use
//! every component, and whoever may submit jobs may register, archive and restore them.
//! Which version a label or a missing version means, and which rows a listing shows, are pure
//! functions over a name's versions (`select`, `listed`), tested below.

use std::path::Path;

use spool_api_types as api;
use spool_spec::Positions;
use spool_spec::component::{ComponentBody, ComponentSpec, InputPort};
use spool_spec::graph::ResolvedComponent;
use spool_store::{ArchiveScope, ComponentRow, NewComponent, StoreError};

use crate::{Action, Caller, Control, ControlError, Result, datastore, invalid};

/// How Azure ML's messages name the workspace; a Spool server is one workspace.
const WORKSPACE: &str = "spool";

/// Which version of a name a request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Version(String),
    /// The label `latest`: the most recently created version.
    Latest,
    /// Neither version nor label (Azure's label `default`): Spool's default version is the
    /// latest.
    Default,
}

impl Selector {
    /// Reads a request's version and label as Azure ML's SDK does: both is an error, and only
    /// `latest` (and `default`, which a bare `azureml:<name>` sends) are labels.
    pub fn parse(name: &str, version: Option<&str>, label: Option<&str>) -> Result<Selector> {
        match (version, label) {
            (Some(_), Some(_)) => Err(invalid("version", "Cannot specify both version and label.")),
            (Some(version), None) => Ok(Selector::Version(version.to_string())),
            (None, Some("latest")) => Ok(Selector::Latest),
            (None, Some("default")) | (None, None) => Ok(Selector::Default),
            (None, Some(label)) => Err(ControlError::Missing {
                target: "label".into(),
                message: format!(
                    "Asset {name} with version label {label} does not exist in workspace.\nhint: Spool's labels are `latest` and `default`, both the most recently created version; or name a version (`spool component list --all-versions` shows them)"
                ),
            }),
        }
    }
}

/// Whether a version is archived, on its own or with its whole name.
fn is_archived(row: &ComponentRow) -> bool {
    row.archived || row.container_archived
}

/// The version `selector` picks among a name's versions (most recently created first):
/// `latest` and the default are the most recently created version that is not archived, or,
/// when every one is, the most recently created of all (archived components stay usable).
pub fn select<'a>(versions: &'a [ComponentRow], selector: &Selector) -> Option<&'a ComponentRow> {
    match selector {
        Selector::Version(version) => versions.iter().find(|r| &r.version == version),
        Selector::Latest | Selector::Default => versions
            .iter()
            .find(|r| !is_archived(r))
            .or_else(|| versions.first()),
    }
}

/// The next version of a name: its highest integer version plus one, or `1`.
pub fn next_version<'a>(versions: impl IntoIterator<Item = &'a str>) -> String {
    versions
        .into_iter()
        .filter_map(|v| v.parse::<u64>().ok())
        .max()
        .map_or(1, |highest| highest.saturating_add(1))
        .to_string()
}

/// What a listing shows of every version (by name, each name's most recently created first):
/// archived versions only with `include_archived`; of each name its latest listed version, or
/// every listed version with `all_versions`.
pub fn listed(
    rows: &[ComponentRow],
    include_archived: bool,
    all_versions: bool,
) -> Vec<&ComponentRow> {
    let mut out: Vec<&ComponentRow> = Vec::new();
    for row in rows {
        if !include_archived && is_archived(row) {
            continue;
        }
        if !all_versions && out.last().is_some_and(|last| last.name == row.name) {
            continue;
        }
        out.push(row);
    }
    out
}

fn unknown_name(name: &str) -> ControlError {
    ControlError::Missing {
        target: "name".into(),
        message: format!(
            "Asset {name} does not exist in workspace {WORKSPACE}.\nhint: `spool component list` shows the registered components; register one with `spool component create --file component.yml`"
        ),
    }
}

fn unknown_version(name: &str, version: &str, versions: &[ComponentRow]) -> ControlError {
    let known: Vec<String> = versions
        .iter()
        .map(|r| format!("`{}`", r.version))
        .collect();
    ControlError::Missing {
        target: "version".into(),
        message: format!(
            "Asset {name} with version {version} does not exist in workspace {WORKSPACE}.\nhint: its versions are {}; `spool component list --all-versions` shows them",
            known.join(", ")
        ),
    }
}

/// A component row as the API shows it.
fn component_view(row: &ComponentRow) -> Result<api::ComponentView> {
    let spec: ComponentSpec = serde_json::from_str(&row.spec_json)
        .map_err(|e| anyhow::anyhow!("component {}:{} in the store: {e}", row.name, row.version))?;
    let text = |value: serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let inputs = spec
        .inputs
        .iter()
        .map(|(name, port)| {
            let view = match port {
                InputPort::Data {
                    data_type,
                    optional,
                    ..
                } => api::PortView {
                    kind: text(serde_json::to_value(data_type).unwrap_or_default()),
                    optional: *optional,
                    default: None,
                },
                InputPort::Parameter {
                    literal_type,
                    default,
                    optional,
                    ..
                } => api::PortView {
                    kind: text(serde_json::to_value(literal_type).unwrap_or_default()),
                    optional: *optional,
                    default: default.clone(),
                },
            };
            (name.clone(), view)
        })
        .collect();
    let outputs = spec
        .outputs
        .iter()
        .map(|(name, port)| {
            (
                name.clone(),
                api::PortView {
                    kind: text(serde_json::to_value(port.data_type).unwrap_or_default()),
                    optional: false,
                    default: None,
                },
            )
        })
        .collect();
    Ok(api::ComponentView {
        id: format!("azureml:{}:{}", row.name, row.version),
        name: row.name.clone(),
        version: row.version.clone(),
        display_name: spec.display_name.clone(),
        description: spec.description.clone(),
        tags: spec.tags.clone(),
        is_deterministic: spec.is_deterministic,
        kind: spec.body.kind().to_string(),
        inputs,
        outputs,
        code: spec.body.code().to_string(),
        archived: is_archived(row),
        created_at: row.created_at.clone(),
        created_by: row.owner_name.clone(),
        spec: serde_json::to_value(&spec).map_err(anyhow::Error::from)?,
    })
}

impl Control {
    /// Registers a component version: the rules of `spool_spec::registration`, then its code
    /// snapshot and the files it names in there. Without a version it gets the next one; an
    /// existing version is a conflict (versions never change).
    pub async fn create_component(
        &self,
        caller: &Caller,
        mut spec: ComponentSpec,
    ) -> Result<api::ComponentView> {
        caller.require(Action::RegisterComponents)?;
        let diags = spool_spec::registration::check_component(
            &spec,
            &Positions::new(),
            &self.spec_catalog(),
        );
        if !diags.is_empty() {
            let first = diags.first().map(|d| d.field.clone()).unwrap_or_default();
            let text: Vec<String> = diags.iter().map(|d| d.render("component")).collect();
            return Err(invalid(first, text.join("\n")));
        }
        self.check_component_code(&spec)?;
        let name = spec
            .name
            .clone()
            .expect("checked: a registered component has a name");
        let explicit = spec.version.clone();
        // An automatic version may race with another registration of the same name: take the
        // next one again.
        for _ in 0..5 {
            let version = match &explicit {
                Some(version) => version.clone(),
                None => {
                    let versions = self.store().component_versions(&name).await?;
                    next_version(versions.iter().map(|r| r.version.as_str()))
                }
            };
            spec.version = Some(version.clone());
            let new = NewComponent {
                name: name.clone(),
                version: version.clone(),
                spec_json: serde_json::to_string(&spec).map_err(anyhow::Error::from)?,
                owner_id: caller.id,
            };
            match self.store().insert_component(&new).await {
                Ok(row) => {
                    tracing::info!(component = %name, %version, user = %caller.name, "component registered");
                    return component_view(&row);
                }
                Err(StoreError::Conflict(_)) if explicit.is_none() => continue,
                Err(StoreError::Conflict(_)) => {
                    let versions = self.store().component_versions(&name).await?;
                    let next = next_version(versions.iter().map(|r| r.version.as_str()));
                    return Err(ControlError::Conflict {
                        target: "version".into(),
                        message: format!(
                            "component `{name}` has a version `{version}` already; a registered version never changes\nhint: pass another version (`--version {next}`), or leave `version` out to get the next one"
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ControlError::Conflict {
            target: "version".into(),
            message: format!(
                "component `{name}`: other registrations kept taking the next version; try again, or pass `--version`"
            ),
        })
    }

    /// The code snapshot exists, and the entry and listed files are in it.
    fn check_component_code(&self, spec: &ComponentSpec) -> Result<()> {
        let body = match &spec.body {
            ComponentBody::Spark(body) => body,
            ComponentBody::Command(command) => {
                if let Some(code) = &command.code {
                    self.snapshot_dir(code)?;
                }
                return Ok(());
            }
        };
        let snapshot = self.snapshot_dir(&body.code)?;
        let in_snapshot = |field: &str, rel: &str, what: &str| -> Result<()> {
            let path = datastore::resolve_inside(&snapshot, rel).map_err(|m| invalid(field, m))?;
            if !Path::new(&path).exists() {
                return Err(invalid(
                    field,
                    format!("`{rel}` does not exist in the code folder ({what})"),
                ));
            }
            Ok(())
        };
        if let spool_spec::Entry::File(file) = &body.entry {
            in_snapshot("entry.file", file, "Entry doesn't exist.")?;
        }
        for (field, list) in [
            ("py_files", &body.py_files),
            ("jars", &body.jars),
            ("files", &body.files),
            ("archives", &body.archives),
        ] {
            for (i, item) in list.iter().enumerate() {
                in_snapshot(&format!("{field}[{i}]"), item, "a file it lists")?;
            }
        }
        Ok(())
    }

    /// Lists components: of each name its latest version, or every version; archived ones only
    /// when asked.
    pub async fn components(
        &self,
        caller: &Caller,
        include_archived: bool,
        all_versions: bool,
    ) -> Result<api::ComponentList> {
        caller.require(Action::ViewComponents)?;
        let rows = self.store().all_components().await?;
        let components = listed(&rows, include_archived, all_versions)
            .into_iter()
            .map(component_view)
            .collect::<Result<Vec<_>>>()?;
        Ok(api::ComponentList { components })
    }

    /// One version of a component: by version, by label (`latest`), or the default (latest).
    pub async fn component(
        &self,
        caller: &Caller,
        name: &str,
        version: Option<&str>,
        label: Option<&str>,
    ) -> Result<api::ComponentView> {
        caller.require(Action::ViewComponents)?;
        let row = self.find_component(name, version, label).await?;
        component_view(&row)
    }

    async fn find_component(
        &self,
        name: &str,
        version: Option<&str>,
        label: Option<&str>,
    ) -> Result<ComponentRow> {
        let selector = Selector::parse(name, version, label)?;
        let versions = self.store().component_versions(name).await?;
        if versions.is_empty() {
            return Err(unknown_name(name));
        }
        match select(&versions, &selector) {
            Some(row) => Ok(row.clone()),
            None => Err(unknown_version(
                name,
                version.unwrap_or_default(),
                &versions,
            )),
        }
    }

    /// Archives or restores one version, or (without a version) a name with all its versions.
    /// A version of an archived name cannot be restored alone, as in Azure ML.
    pub async fn set_component_archived(
        &self,
        caller: &Caller,
        name: &str,
        version: Option<&str>,
        archived: bool,
    ) -> Result<()> {
        caller.require(Action::RegisterComponents)?;
        let versions = self.store().component_versions(name).await?;
        if versions.is_empty() {
            return Err(unknown_name(name));
        }
        let scope = match version {
            Some(version) => {
                let Some(row) = versions.iter().find(|r| r.version == version) else {
                    return Err(unknown_version(name, version, &versions));
                };
                if !archived && row.container_archived {
                    return Err(ControlError::Conflict {
                        target: "version".into(),
                        message: format!(
                            "component `{name}` is archived as a whole, so its version `{version}` cannot be restored alone\nhint: restore the whole component with `spool component restore --name {name}`"
                        ),
                    });
                }
                ArchiveScope::Version(version)
            }
            None => ArchiveScope::Container,
        };
        self.store()
            .set_component_archived(name, scope, archived)
            .await?;
        tracing::info!(component = %name, version = version.unwrap_or("(all)"), archived, user = %caller.name, "component archive flag set");
        Ok(())
    }

    /// The component a pipeline node's `azureml:` reference names, as `name:version`. Archived
    /// components resolve too ("You can still continue to reference and use an archived
    /// component in your pipelines").
    pub(crate) async fn resolve_component(
        &self,
        name: &str,
        version: Option<&str>,
        label: Option<&str>,
    ) -> Result<ResolvedComponent> {
        let row = self.find_component(name, version, label).await?;
        let spec: ComponentSpec = serde_json::from_str(&row.spec_json).map_err(|e| {
            anyhow::anyhow!("component {}:{} in the store: {e}", row.name, row.version)
        })?;
        Ok(ResolvedComponent {
            id: format!("{}:{}", row.name, row.version),
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use spool_core::UserId;

    use super::*;

    /// Versions newest first, written `v`, `v archived` or `v (name archived)`.
    fn rows(name: &str, versions: &[&str]) -> Vec<ComponentRow> {
        versions
            .iter()
            .map(|v| {
                let (version, flag) = v.split_once(' ').unwrap_or((v, ""));
                ComponentRow {
                    name: name.into(),
                    version: version.into(),
                    spec_json: "{}".into(),
                    owner_id: UserId(1),
                    owner_name: "alice".into(),
                    created_at: String::new(),
                    archived: flag == "archived",
                    container_archived: flag == "(name archived)",
                }
            })
            .collect()
    }

    #[track_caller]
    fn check_select(versions: &[&str], version: Option<&str>, label: Option<&str>, expect: Expect) {
        let versions = rows("wc", versions);
        let out = match Selector::parse("wc", version, label) {
            Ok(selector) => match select(&versions, &selector) {
                Some(row) => row.version.clone(),
                None => "(none)".into(),
            },
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&out);
    }

    #[test]
    fn latest_is_the_most_recently_created_not_the_highest() {
        check_select(&["2", "10", "1"], None, Some("latest"), expect!["2"]);
        check_select(&["2", "10", "1"], None, None, expect!["2"]);
        check_select(&["2", "10", "1"], None, Some("default"), expect!["2"]);
        check_select(&["2", "10", "1"], Some("10"), None, expect!["10"]);
        check_select(&["2", "10", "1"], Some("3"), None, expect!["(none)"]);
    }

    #[test]
    fn latest_skips_archived_versions_unless_all_are() {
        check_select(
            &["3 archived", "2", "1"],
            None,
            Some("latest"),
            expect!["2"],
        );
        check_select(
            &["2 (name archived)", "1 (name archived)"],
            None,
            Some("latest"),
            expect!["2"],
        );
        // An archived version named explicitly is still found.
        check_select(&["3 archived", "2"], Some("3"), None, expect!["3"]);
    }

    #[test]
    fn labels_are_latest_and_default_only_and_not_with_a_version() {
        check_select(
            &["1"],
            None,
            Some("prod"),
            expect![[r#"
                error: Asset wc with version label prod does not exist in workspace.
                hint: Spool's labels are `latest` and `default`, both the most recently created version; or name a version (`spool component list --all-versions` shows them)"#]],
        );
        check_select(
            &["1"],
            Some("1"),
            Some("latest"),
            expect!["error: Cannot specify both version and label."],
        );
    }

    #[test]
    fn the_next_version_follows_the_highest_integer() {
        assert_eq!(next_version([]), "1");
        assert_eq!(next_version(["1", "2", "10", "9"]), "11");
        assert_eq!(next_version(["1.0.0", "beta"]), "1");
        assert_eq!(next_version(["3", "2.5"]), "4");
    }

    #[test]
    fn listings_show_the_latest_unarchived_version_of_each_name() {
        let mut all = rows("prep", &["1 (name archived)"]);
        all.extend(rows("wc", &["3 archived", "2", "1"]));
        let show = |include_archived, all_versions| {
            listed(&all, include_archived, all_versions)
                .iter()
                .map(|r| format!("{}:{}", r.name, r.version))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(show(false, false), "wc:2");
        assert_eq!(show(false, true), "wc:2 wc:1");
        assert_eq!(show(true, false), "prep:1 wc:3");
        assert_eq!(show(true, true), "prep:1 wc:3 wc:2 wc:1");
    }
}
