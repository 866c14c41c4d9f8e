#!/bin/sh
# embed.sh PAGE OUT: writes OUT, a C header holding PAGE's bytes as
# ngx_http_discovery_ui_page[], which the module serves (discovery_ui).
# Only od and sed, which every build host has.
set -eu

page=$1
out=$2

[ -s "$page" ] || { echo "embed.sh: $page: missing or empty" >&2; exit 1; }

{
    echo "/* generated from src/ui/$(basename "$page") by src/ui/embed.sh */"
    echo
    echo "static u_char  ngx_http_discovery_ui_page[] = {"
    od -An -v -w12 -tx1 "$page" \
        | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1, /g' -e 's/, $/,/' \
              -e 's/^/    /'
    echo "};"
} > "$out.tmp"

mv -f "$out.tmp" "$out"
