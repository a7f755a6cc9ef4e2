//! The slash commands of the chat input, in one table: the help screen lists
//! [`COMMANDS`] and the input line looks names up in it, so adding a command
//! is one row here (and its function).
//!
//! A line starting with `/` is a command or an error, never a message: a
//! mistyped command must never be sent to the contact. `//text` is how a
//! message starting with `/` is sent.

use super::{about, disappear, erase, files, search, Action, ChatState};

/// One command of the input line.
pub struct Command {
    /// Typed after the `/`.
    pub name: &'static str,
    /// How its arguments are shown in usage lines and the help screen.
    pub args: &'static str,
    pub summary: &'static str,
    /// Runs it with the (trimmed) text after the name. `Err` is the error
    /// shown in the status line; the typed line is then kept for fixing.
    run: fn(&mut ChatState, &str) -> Result<Option<Action>, String>,
}

pub const COMMANDS: &[Command] = &[
    Command {
        name: "open",
        args: "NAME",
        summary: "open the conversation with a contact or a group",
        run: open,
    },
    Command {
        name: "reply",
        args: "[^N] TEXT",
        summary: "reply to their newest message (^N: the N-th from the bottom)",
        run: about::reply,
    },
    Command {
        name: "react",
        args: "[^N] EMOJI",
        summary: "react to the newest message (^N: the N-th from the bottom)",
        run: about::react,
    },
    Command {
        name: "unreact",
        args: "[^N] EMOJI",
        summary: "take a reaction of yours back",
        run: about::unreact,
    },
    Command {
        name: "edit",
        args: "[^N] TEXT",
        summary: "replace the text of your newest message",
        run: about::edit,
    },
    Command {
        name: "delete",
        args: "[^N]",
        summary: "delete your newest message for everyone",
        run: about::delete,
    },
    Command {
        name: "file",
        args: "PATH",
        summary: "send the file at PATH to this conversation",
        run: files::send_file,
    },
    Command {
        name: "save",
        args: "[^N] [PATH]",
        summary: "save the newest file here (^N: the N-th message) into PATH or .",
        run: files::save,
    },
    Command {
        name: "delete-conversation",
        args: "[--everyone]",
        summary: "delete this conversation here (--everyone: for them too); asks first",
        run: erase::delete_conversation,
    },
    Command {
        name: "disappear",
        args: "DURATION|off",
        summary: "delete this conversation's new messages after 30s, 5m, 1h, 2d, 1w …",
        run: disappear::disappear,
    },
    Command {
        name: "devices",
        args: "",
        summary: "list this account's devices and which is this one",
        run: devices,
    },
    Command {
        name: "block",
        args: "NAME",
        summary: "show nothing from a contact and send it nothing",
        run: block,
    },
    Command {
        name: "unblock",
        args: "NAME",
        summary: "undo /block",
        run: unblock,
    },
    Command {
        name: "search",
        args: "TEXT",
        summary: "find TEXT in the messages stored on this device",
        run: search::search,
    },
    Command {
        name: "help",
        args: "",
        summary: "show this help (also ? on an empty input line)",
        run: help,
    },
];

/// What a line typed into the input means.
pub enum Parsed<'a> {
    /// Send this text.
    Message(&'a str),
    Command(&'static Command, &'a str),
    Unknown(&'a str),
}

pub fn parse(line: &str) -> Parsed<'_> {
    if line.starts_with("//") {
        // `//text` sends `/text`: the first slash only escapes the second.
        return Parsed::Message(&line[1..]);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Parsed::Message(line);
    };
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(command) => Parsed::Command(command, args.trim()),
        None => Parsed::Unknown(name),
    }
}

impl Command {
    pub fn run(&self, state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
        (self.run)(state, args)
    }

    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{} {}", self.name, self.args)
        }
    }
}

fn open(state: &mut ChatState, name: &str) -> Result<Option<Action>, String> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("usage: /open USERNAME".to_owned());
    }
    // A group is opened by the name it is shown under; anything else
    // names a contact.
    let name = state
        .conversations
        .iter()
        .find(|c| c.group.is_some() && c.display.as_str() == name)
        .map_or_else(|| name.to_owned(), |c| c.username.clone());
    let action = state.select(&name);
    state.sort();
    Ok(action)
}

fn devices(_state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    if !args.is_empty() {
        return Err("usage: /devices (remove one with umbra devices remove ID)".to_owned());
    }
    Ok(Some(Action::ListDevices))
}

fn help(state: &mut ChatState, _args: &str) -> Result<Option<Action>, String> {
    state.help = Some(0);
    Ok(None)
}

/// `/block NAME` and `/unblock NAME`.
fn block(_state: &mut ChatState, name: &str) -> Result<Option<Action>, String> {
    set_blocked(name, true)
}

fn unblock(_state: &mut ChatState, name: &str) -> Result<Option<Action>, String> {
    set_blocked(name, false)
}

fn set_blocked(name: &str, blocked: bool) -> Result<Option<Action>, String> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        let command = if blocked { "block" } else { "unblock" };
        return Err(format!("usage: /{command} NAME"));
    }
    Ok(Some(Action::Block {
        contact: name.to_owned(),
        blocked,
    }))
}
