"""`lwmspectro iq`: write one labelled SigMF recording (cf32) of any protocol and channel."""

HELP = "write one labelled SigMF recording (cf32) for a chosen protocol, modulation, SNR, mobility, site"

MAX_SECONDS = 2.0
"""The longest recording one call writes: 61.44 M samples, 492 MB of cf32 at 30.72 MS/s (the
generator holds a few times that while it works)."""

DEFAULT_SNR_DB = 20.0
DEFAULT_MOBILITY = "pedestrian"
DEFAULT_CHANNEL = "site"

OPTIONS = {
    "bandwidth": "--bandwidth",
    "modulation": "--modulation",
    "code_rate": "--code-rate",
    "other_kind": "--other-kind",
    "snr": "--snr",
    "mobility": "--mobility",
    "speed": "--speed",
    "carrier": "--carrier",
    "channel": "--channel",
    "scenario": "--scenario",
    "scenario_folder": "--scenario-folder",
    "user": "--user",
    "impairments": "--impairments",
}
"""The options that describe the signal, by their argparse dest."""

SITE_OPTIONS = ("scenario", "scenario_folder", "user")
CARRIED = {
    "wifi": set(OPTIONS) - {"other_kind"},
    "lte": set(OPTIONS) - {"other_kind"},
    "nr": set(OPTIONS) - {"other_kind"},
    "other": set(OPTIONS) - {"bandwidth", "modulation", "code_rate"},
    "none": set(),
}
"""The signal options each protocol takes; `none` is receiver noise alone."""


def add_arguments(parser):
    from ..cli import non_negative_int, positive_float
    from ..labels import MOBILITY_CLASSES, MODULATIONS, OTHER_KINDS, ROUTER_CLASSES

    parser.add_argument("--protocol", required=True, choices=ROUTER_CLASSES, help="wifi, lte, nr, other or none")
    parser.add_argument("--bandwidth", type=positive_float, help="channel bandwidth in Hz (default: drawn)")
    parser.add_argument("--modulation", choices=MODULATIONS, help="BPSK, QPSK, 16QAM, 64QAM or 256QAM (default: drawn)")
    parser.add_argument("--code-rate", help="e.g. 1/2, 3/4 (default: drawn)")
    parser.add_argument(
        "--other-kind",
        choices=OTHER_KINDS,
        help="for --protocol other: " + ", ".join(OTHER_KINDS) + " (default: drawn)",
    )
    parser.add_argument(
        "--snr", type=float, help=f"SNR in dB within the occupied bandwidth (default {DEFAULT_SNR_DB:g})"
    )
    parser.add_argument(
        "--mobility", choices=MOBILITY_CLASSES, help=f"static, pedestrian or vehicular (default {DEFAULT_MOBILITY})"
    )
    parser.add_argument("--speed", type=float, help="km/h, 0 to 500 (default: its Doppler drawn in the mobility class)")
    parser.add_argument("--carrier", type=float, help="carrier in Hz (default: drawn for the protocol)")
    parser.add_argument("--channel", help="'site' (ray-traced scenario user, the default) or TDL-A..TDL-E")
    parser.add_argument("--scenario", help="scenario name (default: the first training scenario)")
    parser.add_argument("--scenario-folder", help="folder of DeepMIMO scenarios (default: the shipped ones)")
    parser.add_argument("--user", type=int, help="user index in the scenario (default: drawn)")
    parser.add_argument("--impairments", action="store_true", help="add random receiver impairments (labelled)")
    parser.add_argument(
        "--seconds", type=float, help=f"length, up to {MAX_SECONDS:g} s (default: one model observation)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", required=True, help="output path without extension")
    parser.add_argument("--overwrite", action="store_true")


def check_options(args) -> None:
    """Refuse a signal option the protocol (or the channel) does not use, naming those it does:
    an option that changed nothing would still be believed."""
    from ..cli import UsageError
    from ..labels import SNR_RANGE_DB
    from ..synth import CARRIER_RANGE_HZ, SPEED_RANGE_KMH

    given = [dest for dest in OPTIONS if getattr(args, dest) not in (None, False)]
    carried = CARRIED[args.protocol]
    if args.channel not in (None, DEFAULT_CHANNEL):
        carried = carried - set(SITE_OPTIONS)
    for dest in given:
        if dest not in carried:
            valid = ", ".join(OPTIONS[d] for d in OPTIONS if d in carried) or "none but --seconds (noise alone)"
            why = "a standard channel profile" if dest in SITE_OPTIONS and dest in CARRIED[args.protocol] else ""
            subject = f"--channel {args.channel} ({why})" if why else f"--protocol {args.protocol}"
            raise UsageError(f"{OPTIONS[dest]} has no effect with {subject}; options it takes: {valid}")
    ranges = (("snr", SNR_RANGE_DB, "dB"), ("speed", SPEED_RANGE_KMH, "km/h"), ("carrier", CARRIER_RANGE_HZ, "Hz"))
    for dest, (low, high), unit in ranges:
        value = getattr(args, dest)
        if value is not None and not low <= value <= high:
            raise UsageError(f"{OPTIONS[dest]} {value:g}: out of range; valid: {low:g} to {high:g} {unit}")


def check_seconds(seconds: float | None) -> None:
    """Refuse a length that is not positive, shorter than one sample, or longer than one call may
    write (before allocating)."""
    import math

    from ..cli import UsageError
    from ..spectrogram import DEFAULT_PARAMS

    if seconds is None:
        return
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"--seconds {seconds:g}: the length must be a positive number of seconds")
    if round(seconds * DEFAULT_PARAMS.sample_rate_hz) < 1:
        raise UsageError(
            f"--seconds {seconds:g}: shorter than one sample at {DEFAULT_PARAMS.sample_rate_hz / 1e6:g} MS/s"
        )
    if seconds > MAX_SECONDS:
        raise UsageError(
            f"--seconds {seconds:g}: at most {MAX_SECONDS:g} s per recording (it is held in memory); "
            "write several recordings with different --seed values for more"
        )


def spec_from_args(args):
    """An ExampleSpec from the command's arguments, drawing what was left open."""
    import dataclasses

    import numpy as np

    from .. import labels, phy
    from ..channels import doppler_hz
    from ..cli import UsageError
    from ..synth import CARRIERS_HZ, ExampleSpec, draw_speed

    labels.check_choice("protocol", args.protocol, labels.ROUTER_CLASSES)
    check_options(args)
    rng = np.random.default_rng(args.seed)
    carrier = args.carrier if args.carrier is not None else float(rng.choice(CARRIERS_HZ[args.protocol]))
    if args.protocol == "none":
        return ExampleSpec("none", None, None, None, carrier, args.seed)
    mobility = args.mobility or DEFAULT_MOBILITY
    channel = args.channel or DEFAULT_CHANNEL
    labels.check_choice("mobility", mobility, labels.MOBILITY_CLASSES)
    if args.speed is not None:
        fd = doppler_hz(args.speed, carrier)
        if args.mobility is None:
            mobility = labels.mobility_of_doppler(fd)
        elif labels.mobility_of_doppler(fd) != mobility:
            raise UsageError(
                f"--speed {args.speed:g} km/h at {carrier / 1e9:g} GHz is a Doppler of {fd:.3g} Hz, which is "
                f"{labels.mobility_of_doppler(fd)}, not {mobility} (static < 1 Hz <= pedestrian < 40 Hz <= vehicular)"
            )
    speed = args.speed if args.speed is not None else draw_speed(mobility, rng, carrier)
    scenario = user = None
    if channel == "site":
        from .. import scenarios

        scenario = args.scenario or scenarios.TRAIN_SCENARIOS[0]
        sc = scenarios.load_scenario(scenario, args.scenario_folder)
        users = scenarios.active_users(sc)
        user = args.user if args.user is not None else int(rng.choice(users))
        if user not in set(users.tolist()):
            raise ValueError(
                f"user {user} has no propagation path in {scenario}; valid users: 0..{sc.n_users - 1} with paths"
            )
    spec = ExampleSpec(
        args.protocol,
        args.snr if args.snr is not None else DEFAULT_SNR_DB,
        mobility,
        speed,
        carrier,
        args.seed,
        scenario=scenario,
        user=user,
        channel=channel,
        impairments=args.impairments,
    )
    if args.protocol == "other":
        kind = args.other_kind or str(rng.choice(labels.OTHER_KINDS))
        return dataclasses.replace(spec, other_kind=kind)
    opts = phy.options(args.protocol)
    modulation = args.modulation or str(rng.choice(opts["modulation"]))
    bandwidth = args.bandwidth if args.bandwidth is not None else float(rng.choice(opts["bandwidth_hz"]))
    code_rate = args.code_rate or str(rng.choice(opts["code_rate"].get(modulation, ("",))))
    try:
        labels.check_modulation(args.protocol, modulation)
        labels.check_choice(f"{args.protocol} bandwidth (Hz)", bandwidth, opts["bandwidth_hz"])
        labels.check_choice(f"{args.protocol} {modulation} code rate", code_rate, opts["code_rate"][modulation])
    except ValueError as err:
        raise UsageError(str(err)) from None
    return dataclasses.replace(spec, bandwidth_hz=bandwidth, modulation=modulation, code_rate=code_rate)


def run(args) -> int:
    from pathlib import Path

    from ..dataset_generation import check_output_folder
    from ..sigmf_io import write_recording
    from ..spectrogram import DEFAULT_PARAMS
    from ..synth import make_stream

    check_seconds(args.seconds)
    spec = spec_from_args(args)
    check_output_folder(Path(args.out).parent, f"--out {args.out}")
    n_samples = int(round(args.seconds * DEFAULT_PARAMS.sample_rate_hz)) if args.seconds else None
    iq, row = make_stream(spec, DEFAULT_PARAMS, n_samples, args.scenario_folder)
    meta = write_recording(args.out, iq, DEFAULT_PARAMS.sample_rate_hz, spec.carrier_hz, row, overwrite=args.overwrite)
    print(meta)
    return 0
