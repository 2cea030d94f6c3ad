//! `calicoctl-rs`: the tabby operator CLI.

use clap::Parser;

fn main() {
    let cli = calicoctl_rs::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(calicoctl_rs::output::exit::PROBLEM);
        }
    };
    let (mut out, mut err, mut stdin) = (std::io::stdout(), std::io::stderr(), std::io::stdin());
    let datastore = cli.datastore.clone();
    let mut session = calicoctl_rs::Session::new(&mut out, &mut err, &mut stdin, datastore);
    let code = runtime.block_on(calicoctl_rs::execute(cli, &mut session));
    std::process::exit(code);
}
