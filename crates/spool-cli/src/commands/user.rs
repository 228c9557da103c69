//! `spool user create`.

use crate::ServerArgs;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (admin only) and print their token. The token is shown only once.
    Create {
        /// Lowercase letters, digits, `_`, `-`, `.`.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn run(command: UserCommand) -> anyhow::Result<i32> {
    match command {
        UserCommand::Create { name, server } => {
            let created = server.client()?.create_user(&name).await?;
            eprintln!(
                "created user `{}`; keep this token, it is not shown again:",
                created.name
            );
            println!("{}", created.token);
            Ok(0)
        }
    }
}
