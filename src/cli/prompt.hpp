// Asking the person at the terminal: a name, a password with echo off, a yes/no.
// Prompts and answers go through /dev/tty, so that stdin and stdout stay free for
// --password-stdin and for output that scripts capture.
#pragma once

#include <string>
#include <string_view>

namespace neurod::cli {

// Reads one line from the terminal after printing prompt. Throws CliError(usage)
// with "cannot ask for …: no terminal. " + hint when there is none.
std::string prompt_line(std::string_view prompt, std::string_view hint);

// The same with echo off; the terminal is restored even on Ctrl-C.
std::string prompt_secret(std::string_view prompt, std::string_view hint);

// A new password, asked twice; throws CliError(usage) when they differ or it is empty.
std::string prompt_new_password(std::string_view hint);

// All of stdin less the trailing line break, for --password-stdin and --token-stdin.
// Throws CliError(usage) naming the option when it is empty.
std::string read_stdin_secret(std::string_view option);

// Unless yes: refuses (CliError(usage)) when stdin is not a terminal, else asks
// "question [y/N] " and throws CliError(failure, "cancelled") unless the answer is yes.
void confirm(std::string_view question, bool yes);

}  // namespace neurod::cli
