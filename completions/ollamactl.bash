_ollamactl_completion() {
    local IFS=$'\n'
    local response

    COMPREPLY=()
    response=$(env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" \
        COMP_BREAK_CHARS="$COMP_WORDBREAKS" _OLLAMACTL_COMPLETE=bash_complete "$1")

    for completion in $response; do
        IFS=',' read -r type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=("$value")
        fi
    done
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
        compopt -o nospace  # a folder (--format @dir/): go on typing inside it
    fi

    return 0
}

_ollamactl_completion_setup() {
    complete -o nosort -F _ollamactl_completion ollamactl
}

_ollamactl_completion_setup;
