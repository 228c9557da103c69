//! `spool session list`.

use crate::Globals;
use crate::output;

pub(super) async fn run(globals: &Globals) -> anyhow::Result<i32> {
    let list = globals.client()?.sessions().await?;
    output::print(globals.format(), &list.sessions, || {
        let mut table =
            output::table(&["ID", "NAME", "KIND", "STATE", "RUNTIME", "OWNER", "CREATED"]);
        for s in &list.sessions {
            table.add_row(vec![
                s.id.to_string(),
                s.name.clone().unwrap_or_default(),
                s.kind.clone(),
                s.state.to_string(),
                s.runtime.clone(),
                s.owner.clone(),
                s.created_at.clone(),
            ]);
        }
        table
    })?;
    Ok(0)
}
