"""What the REPL says, in the Go CLI's words: help blocks, placeholders, what TAB completes."""

from __future__ import annotations

PROMPT = ">>> "
CONTINUATION_PROMPT = "... "
#: The grey text on an empty line, after each prompt (on a colour terminal, as Go).
PLACEHOLDERS = {
    PROMPT: "Send a message (/? for help)",
    CONTINUATION_PROMPT: 'Use """ to end multi-line input',
}

USAGE = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /export <file>  Write the conversation to a Markdown or .json file
  /retry          Regenerate the last answer
  /image <path>   Attach an image to the next message
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.
"""
MEDIA_USAGE = "Use /path/to/file to include .jpg, .png, .webp images, or .wav audio files.\n"
SET_USAGE = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking
"""
SHOW_USAGE = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template
"""
SHORTCUTS_USAGE = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + r            Search the history
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit ollamactl (/bye)
"""
PARAMETERS_USAGE = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters
"""
SET_WORDS = (
    "parameter",
    "system",
    "history",
    "nohistory",
    "wordwrap",
    "nowordwrap",
    "format",
    "noformat",
    "verbose",
    "quiet",
    "think",
    "nothink",
)
SHOW_WORDS = ("info", "license", "modelfile", "parameters", "system", "template")
COMMANDS = ("/set", "/show", "/load", "/save", "/clear", "/export", "/retry", "/image", "/bye")
COMMANDS += ("/exit", "/help", "/?")
COMPLETIONS = {
    "/set": SET_WORDS,
    "/show": SHOW_WORDS,
    "/?": ("set", "show", "shortcuts"),
    "/help": ("set", "show", "shortcuts"),
}
