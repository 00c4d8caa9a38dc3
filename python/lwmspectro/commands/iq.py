"""`lwmspectro iq`: write one labelled SigMF recording (cf32) of any protocol and channel."""

HELP = "write one labelled SigMF recording (cf32) for a chosen protocol, modulation, SNR, mobility, site"


def add_arguments(parser):
    parser.add_argument("--protocol", required=True, help="wifi, lte, nr, other or none")
    parser.add_argument("--bandwidth", type=float, help="channel bandwidth in Hz (default: drawn)")
    parser.add_argument("--modulation", help="BPSK, QPSK, 16QAM, 64QAM or 256QAM (default: drawn)")
    parser.add_argument("--code-rate", help="e.g. 1/2, 3/4 (default: drawn)")
    parser.add_argument("--other-kind", help="for --protocol other: cw, sc_psk, sc_qam or fm")
    parser.add_argument("--snr", type=float, default=20.0, help="SNR in dB within the occupied bandwidth")
    parser.add_argument("--mobility", default="pedestrian", help="static, pedestrian or vehicular")
    parser.add_argument("--speed", type=float, help="km/h (default: drawn within the mobility class)")
    parser.add_argument("--carrier", type=float, help="carrier in Hz (default: drawn for the protocol)")
    parser.add_argument("--channel", default="site", help="'site' (ray-traced scenario user) or TDL-A..TDL-E")
    parser.add_argument("--scenario", help="scenario name (default: the first training scenario)")
    parser.add_argument("--scenario-folder", help="folder of DeepMIMO scenarios (default: the shipped ones)")
    parser.add_argument("--user", type=int, help="user index in the scenario (default: drawn)")
    parser.add_argument("--impairments", action="store_true", help="add random receiver impairments (labelled)")
    parser.add_argument("--seconds", type=float, help="length (default: one model observation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output path without extension")
    parser.add_argument("--overwrite", action="store_true")


def spec_from_args(args):
    """An ExampleSpec from the command's arguments, drawing what was left open."""
    import dataclasses

    import numpy as np

    from .. import labels, phy
    from ..synth import CARRIERS_HZ, ExampleSpec, draw_speed

    labels.check_choice("protocol", args.protocol, labels.ROUTER_CLASSES)
    rng = np.random.default_rng(args.seed)
    carrier = args.carrier or float(rng.choice(CARRIERS_HZ[args.protocol]))
    if args.protocol == "none":
        return ExampleSpec("none", None, None, None, carrier, args.seed)
    labels.check_choice("mobility", args.mobility, labels.MOBILITY_CLASSES)
    speed = args.speed if args.speed is not None else draw_speed(args.mobility, rng)
    scenario = user = None
    if args.channel == "site":
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
        args.snr,
        args.mobility,
        speed,
        carrier,
        args.seed,
        scenario=scenario,
        user=user,
        channel=args.channel,
        impairments=args.impairments,
    )
    if args.protocol == "other":
        kind = args.other_kind or str(rng.choice(labels.OTHER_KINDS))
        return dataclasses.replace(spec, other_kind=kind)
    opts = phy.options(args.protocol)
    modulation = args.modulation or str(rng.choice(opts["modulation"]))
    labels.check_modulation(args.protocol, modulation)
    bandwidth = args.bandwidth or float(rng.choice(opts["bandwidth_hz"]))
    labels.check_choice(f"{args.protocol} bandwidth (Hz)", bandwidth, opts["bandwidth_hz"])
    code_rate = args.code_rate or str(rng.choice(opts["code_rate"][modulation]))
    labels.check_choice(f"{args.protocol} {modulation} code rate", code_rate, opts["code_rate"][modulation])
    return dataclasses.replace(spec, bandwidth_hz=bandwidth, modulation=modulation, code_rate=code_rate)


def run(args) -> int:
    from ..sigmf_io import write_recording
    from ..spectrogram import DEFAULT_PARAMS
    from ..synth import make_stream

    spec = spec_from_args(args)
    n_samples = int(round(args.seconds * DEFAULT_PARAMS.sample_rate_hz)) if args.seconds else None
    iq, row = make_stream(spec, DEFAULT_PARAMS, n_samples, args.scenario_folder)
    meta = write_recording(args.out, iq, DEFAULT_PARAMS.sample_rate_hz, spec.carrier_hz, row, overwrite=args.overwrite)
    print(meta)
    return 0
