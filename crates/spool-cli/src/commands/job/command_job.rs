//! `spool job create` for a command job (`type: command`): validated here with the command
//! loader, its `code` and local inputs uploaded as for a Spark job, its conda file read and sent
//! with it.

use std::path::Path;

use spool_api_types::JobView;
use spool_client::Client;
use spool_spec::{SpecErrors, ValidCommand};

use super::create::{base_dir, check_local_inputs, local_diag, submit, upload_code, upload_inputs};

/// Validates, uploads code and local inputs, and submits a command job.
pub(super) async fn create(
    client: &Client,
    file: &Path,
    text: &str,
    sets: &[(String, String)],
) -> anyhow::Result<JobView> {
    let file_label = file.display().to_string();
    let ValidCommand {
        mut spec,
        positions,
    } = spool_spec::parse_command_job(text, &file_label, sets)?;
    let base = base_dir(file);
    let pos = |field: &str| positions.get(field).copied();

    let mut diagnostics = Vec::new();
    let code_dir = spec.code.as_ref().map(|code| base.join(code));
    if let (Some(code), Some(dir)) = (&spec.code, &code_dir)
        && !dir.is_dir()
    {
        diagnostics.push(local_diag(
            "code",
            pos("code"),
            "Code path doesn't exist.",
            code,
            "a folder relative to the job file",
        ));
    }
    // A conda file named by path is read here (relative to the job file, as Azure ML does) and
    // sent with the job; the server checks it against the runtime.
    if let Some(env) = spec.environment.as_mut()
        && env.conda_file_path.is_none()
    {
        let local = base.join(&env.conda_file);
        match std::fs::read_to_string(&local) {
            Ok(text) => {
                env.conda_file = text;
                env.conda_file_path = Some(local.display().to_string());
            }
            Err(e) => diagnostics.push(local_diag(
                "environment.conda_file",
                pos("environment.conda_file"),
                &format!("cannot read the conda file: {e}"),
                &env.conda_file,
                "a conda YAML file, relative to the job file",
            )),
        }
    }
    let local_inputs = check_local_inputs(&spec.inputs, &base, &positions, &mut diagnostics);
    if !diagnostics.is_empty() {
        return Err(SpecErrors {
            file: file_label,
            diagnostics,
        }
        .into());
    }
    upload_inputs(client, &mut spec.inputs, local_inputs).await?;
    if let Some(dir) = &code_dir {
        spec.code = Some(upload_code(client, dir).await?);
    }
    submit(client, serde_json::to_value(&spec)?, &positions, file_label).await
}
