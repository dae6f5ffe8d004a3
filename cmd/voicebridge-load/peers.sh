#!/usr/bin/env bash
# peers.sh — what `make bench` measures outside the Go load tool.
#
#   peers.sh peers ENCODER_ENV OUT [SECONDS] [REPEATS]
#       Encodes the same espeak-ng speech with ffmpeg and GStreamer into
#       20 ms Opus RTP on loopback, at the settings in ENCODER_ENV (written
#       by `voicebridge-load -encoder`: voicebridge's defaults), and writes
#       OUT: the settings as "# KEY=VALUE" lines, then one line per peer,
#       "name cpu-s-per-audio-s marginal", the median CPU (user+system) of
#       REPEATS runs over SECONDS of audio (default 60 s, 3 runs). Marginal
#       leaves out process start-up: it subtracts a 2 s run.
#   peers.sh perf PID SECONDS
#       Samples process PID with perf(1) for SECONDS and prints two lines:
#       where its CPU went by object (DSO) and by symbol. voicebridge-load
#       -perf runs this during its final, idle and continuous windows.
set -euo pipefail

peers() {
	local env=$1 out=$2 seconds=${3:-60} repeats=${4:-3}
	# shellcheck source=/dev/null
	. "$env"
	local dir
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' RETURN
	# The bots' utterances (cmd/voicebridge-load/calibrate.go), repeated.
	local texts=("مرحبا، كيف يمكنني مساعدتك اليوم؟"
		"شكرا لاتصالك. سأقوم بالتحقق من طلبك الآن، يرجى الانتظار قليلا."
		"موعدك القادم يوم الثلاثاء في الساعة العاشرة صباحا."
		"هل تريد أن أرسل لك رسالة تأكيد على رقم هاتفك المسجل لدينا؟")
	local i=0
	for t in "${texts[@]}"; do
		espeak-ng -v ar -w "$dir/u$i.wav" "$t"
		sox "$dir/u$i.wav" -t raw -r "$PCM_RATE" -e signed -b 16 -c 1 -L "$dir/u$i.raw"
		i=$((i + 1))
	done
	: >"$dir/long.raw"
	local bytes=$((seconds * PCM_RATE * 2))
	while [ "$(stat -c %s "$dir/long.raw")" -lt "$bytes" ]; do cat "$dir"/u*.raw >>"$dir/long.raw"; done
	head -c $((2 * PCM_RATE * 2)) "$dir/long.raw" >"$dir/short.raw"
	local long_s short_s
	long_s=$(awk -v b="$(stat -c %s "$dir/long.raw")" -v r="$PCM_RATE" 'BEGIN { printf "%.3f", b / 2 / r }')
	short_s=2

	local fec=0 vbr=constrained gst_br=constrained-vbr gst_type
	[ "$OPUS_FEC" = true ] && fec=1
	[ "$OPUS_VBR" = off ] && vbr=off gst_br=cbr
	case $OPUS_APPLICATION in
	audio) gst_type=generic ;; voip) gst_type=voice ;; lowdelay) gst_type=restricted-lowdelay ;;
	*) echo "peers.sh: unknown OPUS_APPLICATION $OPUS_APPLICATION" >&2; return 1 ;;
	esac
	# RTP goes to the discard port of loopback: the peers do their sendto
	# per packet as voicebridge does; unconnected UDP sockets ignore the
	# ICMP replies.
	ffmpeg_cmd() {
		ffmpeg -nostdin -hide_banner -loglevel error -f s16le -ar "$PCM_RATE" -ac 1 -i "$1" \
			-af "aresample=osr=48000:resampler=soxr:precision=$SOXR_PRECISION" \
			-c:a libopus -application "$OPUS_APPLICATION" -b:a "$OPUS_BITRATE" -vbr "$vbr" \
			-compression_level "$OPUS_COMPLEXITY" -frame_duration 20 -fec:a "$fec" -packet_loss "$OPUS_LOSS" \
			-f rtp -payload_type 111 "rtp://127.0.0.1:9?pkt_size=1200"
	}
	gstreamer_cmd() {
		# shellcheck disable=SC2086 # a pipeline is words
		gst-launch-1.0 -q filesrc location="$1" ! rawaudioparse use-sink-caps=false format=pcm pcm-format=s16le \
			sample-rate="$PCM_RATE" num-channels=1 ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 \
			! opusenc audio-type=$gst_type bitrate="$OPUS_BITRATE" complexity="$OPUS_COMPLEXITY" frame-size=20 \
			bitrate-type=$gst_br inband-fec="$OPUS_FEC" packet-loss-percentage="$OPUS_LOSS" dtx="$OPUS_DTX" \
			! rtpopuspay ! udpsink host=127.0.0.1 port=9 sync=false async=false
	}
	# cpu CMD INPUT: the median over REPEATS runs of the command's CPU
	# seconds (user + system, from bash's time).
	cpu() {
		local runs=() t
		for _ in $(seq "$repeats"); do
			t=$( { TIMEFORMAT='%3U %3S'; time "$1" "$2" >/dev/null 2>>"$dir/err"; } 2>&1) || {
				echo "peers.sh: $1 failed: $(tail -3 "$dir/err")" >&2
				return 1
			}
			runs+=("$(awk '{ print $1 + $2 }' <<<"$t")")
		done
		printf '%s\n' "${runs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
	}
	{
		sed -n 's/^\([A-Z_]*=.*\)$/# \1/p' "$env"
		echo "# CPU-seconds per audio-second: median of $repeats runs over $long_s s of espeak-ng speech at $PCM_RATE Hz, 20 ms Opus RTP to loopback"
		for p in ffmpeg gstreamer; do
			local full short
			full=$(cpu "${p}_cmd" "$dir/long.raw")
			short=$(cpu "${p}_cmd" "$dir/short.raw")
			awk -v p="$p" -v f="$full" -v s="$short" -v lf="$long_s" -v ls="$short_s" \
				'BEGIN { printf "%s %.5f %.5f\n", p, f / lf, (f - s) / (lf - ls) }'
		done
	} >"$out.tmp"
	mv "$out.tmp" "$out"
	cat "$out"
}

perf_sample() {
	local pid=$1 seconds=$2 data
	command -v perf >/dev/null || { echo "perf not installed"; return 0; }
	data=$(mktemp)
	trap 'rm -f "$data"' RETURN
	perf record -q -F 250 -e cpu-clock -p "$pid" -o "$data" -- sleep "$seconds" >/dev/null 2>"$data.err" || {
		echo "perf record -p $pid failed: $(tail -1 "$data.err")" >&2
		rm -f "$data.err"
		return 1
	}
	rm -f "$data.err"
	for sort in dso sym; do
		perf report -i "$data" --no-children --sort "$sort" --stdio 2>/dev/null |
			awk -v what="$sort" '/^# Samples:/ { n = $3 }
				/^ *[0-9.]+%/ && k < 8 { p = $1; $1 = ""; s = s (k++ ? ", " : "") substr($0, 2) " " p }
				END { printf "by %s (%s samples): %s\n", what == "dso" ? "object" : "symbol", n, s }'
	done
}

case ${1:-} in
peers) shift; peers "$@" ;;
perf) shift; perf_sample "$@" ;;
*) echo "usage: peers.sh peers ENCODER_ENV OUT [SECONDS] [REPEATS] | peers.sh perf PID SECONDS" >&2; exit 2 ;;
esac
