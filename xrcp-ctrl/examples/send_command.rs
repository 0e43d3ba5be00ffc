//! An embedded controller: makes a link (or, for a paired host, announces itself by
//! multicast), waits for the host, sends it a command and a file, and ends the session.
//!
//! ```text
//! send_command DATA_DIR [--addr IP] [--announce HOST_ID] [--file PATH]
//! ```
//!
//! Output, one fact per line: `link <xrcp:/...>`, `code <session code>` for each connection
//! (compare it with the host's), `connected <host id> <host name>`, `result <JSON>` or
//! `error <JSON>` per command, `stored <path on the host>`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use xrcp::session::RRResult;
use xrcp_ctrl::{Controller, WaitEvent};

fn print(result: RRResult) {
    match result {
        RRResult::Result(v) => println!("result {v}"),
        RRResult::Error(v) => println!("error {v}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: send_command DATA_DIR [--addr IP] [--announce HOST_ID] [--file PATH]");
        std::process::exit(2);
    };
    let (mut addr, mut announce, mut file) = (None::<Ipv4Addr>, None::<i64>, None::<PathBuf>);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("a flag needs a value")?;
        match flag.as_str() {
            "--addr" => addr = Some(value.parse()?),
            "--announce" => announce = Some(value.parse()?),
            "--file" => file = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }

    let mut builder = Controller::builder()
        .device_name("example controller")
        .data_dir(&dir);
    if let Some(addr) = addr {
        builder = builder.address(addr);
    }
    let ctrl = builder.build()?;

    let invitation = match announce {
        Some(id) => ctrl.announce(id).await?,
        None => ctrl.invite().await?,
    };
    println!("link {}", invitation.link());
    let session = invitation
        .accept_with(|event| {
            if let WaitEvent::Code { code, .. } = event {
                println!("code {code}");
            }
        })
        .await?;
    println!(
        "connected {} {}",
        session.host_id(),
        session.host_info().device_name
    );

    print(session.command("set greeting hello").await?);
    if let Some(file) = file {
        println!("stored {}", session.send_file(&file).await?);
    }
    print(session.command("get greeting").await?);
    session.close().await;
    Ok(())
}
