"""The HTR example trainer (examples/htr): data, loaders, tokenizer, model, training, DDP."""

import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

_EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
sys.path.insert(0, os.path.abspath(_EXAMPLES))

from htr import data as synth  # noqa: E402
from htr import loaders, model, normalize, train  # noqa: E402
from htr.tokenizer import ForumTokenizer, Tokenizer  # noqa: E402

HAVE_FONTS = all(synth.font_files([f]) for f in synth.TEST_FONTS)
needs_fonts = pytest.mark.skipif(not HAVE_FONTS, reason="Debian handwriting fonts not installed (scripts/setup.sh)")
TINY = ["--n-train", "48", "--n-val", "8", "--n-test", "8", "--max-chars", "12", "--batch-size", "8",
        "--channels", "4,8,8,8", "--hidden", "16", "--layers", "1", "--no-progress", "--threads", "1",
        "--gen-workers", "1"]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """The synthetic data of the TINY runs, generated once and shared (also by the DDP processes)."""
    path = tmp_path_factory.mktemp("htr-cache")
    args = train.parse_args(TINY)
    cfg = synth.GenConfig(seed=args.seed, height=args.height, n_train=args.n_train, n_val=args.n_val,
                          n_test=args.n_test, max_chars=args.max_chars)
    for split in ("train", "val", "test"):
        synth.load_or_generate(cfg, split, str(path), log=None)
    return str(path)


# ---- tokenizer -------------------------------------------------------------------------------------


def test_tokenizer_roundtrip_and_blank():
    tok = Tokenizer(synth.CHARSET)
    assert len(tok) == len(synth.CHARSET) + 1 and tok.BLANK == 0
    ids = tok.encode("Hello, World 42!")
    assert 0 not in ids and min(ids) >= 1 and max(ids) < len(tok)
    assert tok.decode(ids) == "Hello, World 42!"
    # The trainer's greedy decoding: torch_ctc.greedy_decode, then decode.
    best = torch.tensor([0, 8, 8, 0, 8, 5, 5, 0])
    lp = torch.full((8, 1, len(tok)), -10.0)
    lp[torch.arange(8), 0, best] = 0.0
    assert train.greedy(lp, torch.tensor([8]), tok) == [tok.decode([8, 8, 5])]
    assert Tokenizer.from_json(tok.to_json()).charset == tok.charset
    assert tok.encode("a\u00e9b") == tok.encode("ab")
    with pytest.raises(KeyError):
        tok.encode("\u00e9", strict=True)


def test_forum_tokenizer_collides_with_blank():
    tok = ForumTokenizer(synth.CHARSET)
    assert tok.encode(" ") == [0] and len(tok) == len(synth.CHARSET)


# ---- synthetic data --------------------------------------------------------------------------------


@needs_fonts
def test_render_is_deterministic_and_test_fonts_held_out():
    cfg = synth.GenConfig(seed=3, n_train=4, n_val=2, n_test=3, max_chars=14)
    a = synth.generate_split(cfg, "train")
    b = synth.generate_split(cfg, "train", workers=2, chunk=2)
    assert a["texts"] == b["texts"]
    assert all(np.array_equal(x, y) for x, y in zip(a["images"], b["images"]))
    assert all(im.shape[0] == 32 and im.dtype == np.uint8 for im in a["images"])
    t = synth.generate_split(cfg, "test")
    test_files = {os.path.basename(f) for fam in synth.TEST_FONTS for f in synth.font_files([fam])}
    assert set(t["fonts"]) <= test_files
    assert not set(a["fonts"]) & test_files
    widths = [im.shape[1] for im in a["images"]]
    assert len(set(widths)) > 1


@needs_fonts
def test_training_augmentation_leaves_test_lines_alone():
    # the training-only augmentation draws from its own generator: without it a line is the
    # same pixels (so val/test never change when it is tuned); with it, a different line
    font = synth.font_files([synth.TEST_FONTS[0]])[0]
    plain = synth.render_line("Hello, World 42!", font, np.random.default_rng(5))
    again = synth.render_line("Hello, World 42!", font, np.random.default_rng(5), extra=None)
    assert np.array_equal(plain, again)
    extra = [synth.render_line("Hello, World 42!", font, np.random.default_rng(5), extra=np.random.default_rng(k))
             for k in range(4)]
    assert any(e.shape != plain.shape or not np.array_equal(e, plain) for e in extra)


def _draws(font, c: str) -> bool:
    # PIL draws a character the font lacks as the font's .notdef glyph (a box, or nothing)
    return bytes(font.getmask(c)) != bytes(font.getmask("\uffff"))


def test_every_installed_font_draws_the_charset():
    # a glyph the font lacks would be a box where the label says a letter: a wrong label
    checked = 0
    for fam in synth.FONT_FAMILIES:
        for path in synth.font_files([fam]):
            if path.endswith(".jhf"):
                continue  # the Hershey fonts: test_hershey_stroke_font_covers_charset_and_renders
            font = ImageFont.truetype(path, 40)
            replaced = synth.MISSING_CHARS.get(os.path.basename(path), {})
            lacks = [c for c in synth.CHARSET if c != " " and c not in replaced and not _draws(font, c)]
            assert not lacks, f"{path} has no glyph for {lacks}"
            assert all(_draws(font, c) for sub in replaced.values() for c in sub if c != " "), path
            checked += 1
    if not checked:
        pytest.skip("no font installed (scripts/setup.sh)")


def test_text_for_font_follows_the_pixels():
    assert synth.text_for_font("Say hi", "dkg", "x/dkg.ttf") == "Say hi"
    assert synth.text_for_font("Say hi", "humor-sans", "x/Humor-Sans.ttf") == "SAY HI"
    assert synth.text_for_font("Rock & roll", "it-wasnt-me", "x/It_wasn_t_me.ttf") == "Rock and roll"
    # TomsonTalks: capitals, and no & " ( ): the parentheses go, and no double space is left
    said = synth.text_for_font('say "hi" (now) & (go)', "tomsontalks", "x/TomsonTalks.ttf")
    assert said == "SAY 'HI' NOW AND GO"


def _line_with_body(h: int, w: int, top: int, bot: int, paper: int = 230, ink: int = 30) -> np.ndarray:
    """A fake text line: dense ink in the body rows [top, bot), thin ascenders and descenders."""
    img = np.full((h, w), paper, np.uint8)
    img[top:bot, ::3] = ink  # letters: every third column inked through the body
    img[max(top - 6, 0):top, ::17] = ink  # a few ascenders
    img[bot:min(bot + 4, h), 5::23] = ink  # and descenders
    return img


def test_ink_threshold_separates_ink_from_paper():
    img = _line_with_body(32, 200, 12, 20)
    assert 30 <= normalize.ink_threshold(img) < 230


def test_body_band_finds_the_x_height_band():
    y0, top, bot, y1 = normalize.body_band(_line_with_body(32, 200, 13, 21))
    assert (top, bot) == (13, 21)
    assert y0 == 7 and y1 == 25
    blank = np.full((32, 50), 200, np.uint8)
    assert normalize.body_band(blank) == (0, 0, 32, 32)


@pytest.mark.parametrize("top,bot", [(14, 19), (10, 24), (12, 20)])
def test_normalize_zones_maps_the_body_to_a_fixed_band(top, bot):
    img = _line_with_body(32, 300, top, bot)
    out = normalize.normalize_zones(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    scale = min(max(normalize.ZONES[1] * 32 / (bot - top), 0.6), 2.0)  # kept in SCALE_RANGE
    _, ntop, nbot, _ = normalize.body_band(out)
    centre = (normalize.ZONES[0] + normalize.ZONES[1] / 2) * 32  # the body band's centre row
    lo, hi = centre - (bot - top) * scale / 2, centre + (bot - top) * scale / 2
    assert abs(ntop - lo) <= 1.5 and abs(nbot - hi) <= 1.5
    if 0.6 < normalize.ZONES[1] * 32 / (bot - top) < 2.0:  # unclipped: a normalised line stays about put
        again = normalize.body_band(normalize.normalize_zones(out))
        assert abs(again[1] - ntop) <= 1 and abs(again[2] - nbot) <= 1


def test_normalize_zones_leaves_a_blank_line_blank():
    blank = np.full((32, 40), 210, np.uint8)
    out = normalize.normalize_zones(blank)
    assert out.shape[0] == 32 and out.min() == out.max() == 210


def test_zone_warp_keeps_rows_at_zero_and_moves_ink():
    ink = np.zeros((32, 20), np.float32)
    ink[12:20] = 1.0  # a band in the middle, like the x-height zone
    assert np.array_equal(synth._zone_warp(ink, 0.0, 0.5), ink)
    narrow, wide = synth._zone_warp(ink, -0.5, 0.5), synth._zone_warp(ink, 0.5, 0.5)
    assert narrow.shape == wide.shape == ink.shape
    assert narrow[:, 0].sum() < ink[:, 0].sum() < wide[:, 0].sum()


@pytest.mark.skipif(not synth.font_files(["hershey-script"]), reason="hershey-fonts-data not installed")
def test_hershey_stroke_font_covers_charset_and_renders():
    path = synth.font_files(["hershey-script"])[0]
    font = synth._font(path, 40)
    assert isinstance(font, synth.HersheyFont)
    assert set(synth.CHARSET) <= set(font.glyphs)
    assert font.getlength("Hello") > font.getlength("Hi") > 0
    im = synth.render_line("Hello, World 42!", path, np.random.default_rng(0))
    assert im.shape[0] == 32 and im.shape[1] > 100 and im.min() < 128


@needs_fonts
def test_cache_roundtrip(tmp_path):
    cfg = synth.GenConfig(seed=1, n_train=4, n_val=2, n_test=2, max_chars=10)
    first = synth.load_or_generate(cfg, "val", str(tmp_path), log=None)
    assert (tmp_path / cfg.key() / "val.npz").exists()
    again = synth.load_or_generate(cfg, "val", str(tmp_path), log=None)
    assert first["texts"] == again["texts"]
    assert all(np.array_equal(x, y) for x, y in zip(first["images"], again["images"]))
    assert synth.GenConfig(seed=2).key() != synth.GenConfig(seed=1).key()


def test_collate_and_batch_order():
    tok = Tokenizer(synth.CHARSET)
    ims = [np.full((32, w), 255, np.uint8) for w in (40, 100, 73)]
    b = synth.collate(ims, ["ab", "hello", "x"], tok)
    assert b.images.shape == (3, 1, 32, 104) and float(b.images.max()) == 0.0
    assert b.widths.tolist() == [40, 100, 73] and b.target_lengths.tolist() == [2, 5, 1]
    assert tok.decode(b.targets[1].tolist()) == "hello"
    order = synth.batch_order(list(range(100)), 8, np.random.default_rng(0))
    assert sorted(i for bt in order for i in bt) == list(range(100))


# ---- loaders ---------------------------------------------------------------------------------------


def _write_png(path, w, h=40):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((h, w), 200, np.uint8)).save(path)


def test_iam_loader(tmp_path):
    root = tmp_path / "iam"
    (root / "ascii").mkdir(parents=True)
    (root / "ascii" / "lines.txt").write_text(
        "#--- IAM lines.txt ---\n"
        "#\n"
        "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from\n"
        "a01-000u-01 err 156 19 395 932 1850 105 nominating|any|more|Labour\n"
        "b02-010-03 ok 170 8 100 200 300 60 Hello|there\n"
    )
    for lid, w in (("a01-000u-00", 300), ("a01-000u-01", 150), ("b02-010-03", 80)):
        p = lid.split("-")
        _write_png(str(root / "lines" / p[0] / f"{p[0]}-{p[1]}" / f"{lid}.png"), w)
    d = loaders.load_iam(str(root), height=20)
    assert d["texts"] == ["A MOVE to stop Mr. Gaitskell from", "nominating any more Labour", "Hello there"]
    assert d["images"][0].shape == (20, 150) and d["images"][2].shape == (20, 40)
    assert loaders.load_iam(str(root), only_ok=True)["ids"] == ["a01-000u-00", "b02-010-03"]
    split = loaders.split_iam_ids(d["ids"], seed=0, val=0.34, test=0.34)
    assert sorted(sum(split.values(), [])) == sorted(d["ids"])
    forms = {k: {"-".join(i.split("-")[:2]) for i in v} for k, v in split.items()}
    assert not (forms["train"] & forms["test"]) and not (forms["train"] & forms["val"])
    assert {"a01-000u-00", "a01-000u-01"} <= set(split["train"]) or {"a01-000u-00", "a01-000u-01"}.isdisjoint(
        split["train"]
    )  # lines of one page stay together


def test_tsv_loader_and_training(tmp_path):
    for split, lines in (("train", ["abc", "ba", "cab", "a b"] * 2), ("test", ["ab", "ca"])):
        rows = ["# image\ttext", ""]
        for i, t in enumerate(lines):
            _write_png(str(tmp_path / "img" / f"{split}{i}.png"), 20 + 8 * len(t), 16)
            rows.append(f"img/{split}{i}.png\t{t}")
        (tmp_path / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    d = loaders.load_tsv(str(tmp_path / "train.tsv"), height=32)
    assert d["texts"][:2] == ["abc", "ba"] and d["images"][0].shape == (32, 88)
    (tmp_path / "bad.tsv").write_text("no tab here\n")
    with pytest.raises(ValueError, match="TAB"):
        loaders.load_tsv(str(tmp_path / "bad.tsv"))
    res = train.main(["--data", "tsv", "--data-dir", str(tmp_path), "--steps", "2", "--out", str(tmp_path / "run"),
                      "--no-plots"] + TINY)
    assert res["steps"] == 2 and 0 <= res["test_cer"]


# ---- model -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["pool", "stride"])
@pytest.mark.parametrize("pool", [2, 4, 8])
def test_crnn_frames_match_output(pool, stem):
    m = model.CRNN(10, channels=(4, 8, 8, 8), hidden=8, layers=1, width_pool=pool, stem=stem).eval()
    for w in (37, 64, 101):
        out = m(torch.zeros(2, 1, 32, w))
        t = w // pool if stem == "pool" else -(-w // 2) // (pool // 2)  # the stride-2 conv rounds up
        assert out.shape == (t, 2, 10)
        assert m.frames(torch.tensor([w]))[0] == out.shape[0]
        assert torch.allclose(out.exp().sum(-1), torch.ones(()), atol=1e-5)


def test_forum_net_keeps_width_and_is_not_normalised():
    m = model.ForumNet(10, channels=4, hidden=8)
    out = m(torch.randn(2, 1, 32, 50))
    assert out.shape == (50, 2, 10)
    assert not any(isinstance(x, (torch.nn.MaxPool2d, torch.nn.ReLU, torch.nn.LeakyReLU)) for x in m.modules())


# ---- training --------------------------------------------------------------------------------------


def test_losses_agree():
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(30, 3, 6, generator=g).log_softmax(-1)
    tg = torch.randint(1, 6, (3, 5), generator=g)
    a = train.compute_loss("torch", lp, tg, torch.tensor([30, 25, 20]), torch.tensor([5, 4, 3]))
    b = train.compute_loss("torch_ctc", lp, tg, torch.tensor([30, 25, 20]), torch.tensor([5, 4, 3]))
    assert torch.allclose(a, b, rtol=1e-4)
    cer, wer = train.error_rates(["hello world", "abc"], ["helo world", "abc"])
    assert cer == pytest.approx(1 / 14) and wer == pytest.approx(1 / 3)


@needs_fonts
@pytest.mark.parametrize("loss", ["torch_ctc"])
def test_train_checkpoint_resume(tmp_path, loss, monkeypatch, tiny_cache):
    monkeypatch.setenv("HTR_CACHE", tiny_cache)
    out = tmp_path / "run"
    res = train.main(["--steps", "3", "--eval-every", "2", "--loss", loss, "--out", str(out)] + TINY)
    assert res["steps"] == 3 and res["loss"] == loss and 0 <= res["test_cer"] <= 5
    dec = res["decoding"]  # greedy (the headline CER), beam and beam + LM, LM weights tuned on val
    assert list(dec["test"]) == ["greedy", "beam", "beam+lm"] and dec["test"]["greedy"]["cer"] == res["test_cer"]
    assert dec["lm"]["held_out_in_text"] == 0 and dec["lm"]["order"] == 5 and len(dec["lm"]["val_cer_grid"]) == 16
    assert dec["lm"]["val_cer_grid"][f"{dec['lm']['lm_weight']},{dec['lm']['token_score']}"] == \
        min(dec["lm"]["val_cer_grid"].values()) == dec["val"]["beam+lm"]["cer"]
    for name in ("checkpoint.pt", "results.json", "curves.png", "test_samples.png", "test_alignment.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "results.json").read_text())["steps"] == 3
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 3 and len(ck["history"]["loss"]) == 3
    res2 = train.main(["--steps", "5", "--resume", str(out / "checkpoint.pt"), "--loss", loss, "--out", str(out),
                       "--no-plots"] + TINY)
    assert res2["steps"] == 5
    assert len(torch.load(out / "checkpoint.pt", weights_only=False)["history"]["loss"]) == 5


@needs_fonts
def test_forum_recipe_runs_and_diagnoses(tmp_path, monkeypatch, tiny_cache, capsys):
    monkeypatch.setenv("HTR_CACHE", tiny_cache)
    res = train.main(["--recipe", "forum", "--steps", "2", "--out", str(tmp_path / "forum"), "--no-plots"] + TINY)
    assert res["recipe"] == "forum" and res["steps"] == 2
    out = capsys.readouterr().out
    for needle in ("hard_coded", "normalisation", "blank_in_targets", "torch_ctc refuses", "layout (batch_first)",
                   "infeasible", "label_out_of_range"):
        assert needle in out, needle


def test_procs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--procs", "0"])
    assert "--procs must be at least 1" in capsys.readouterr().err


def test_zone_normalisation_is_on_except_for_the_forum_recipe():
    assert train.parse_args([]).zone_norm == "on"
    assert train.parse_args(["--recipe", "forum"]).zone_norm == "off"  # the forum's setup had none
    assert train.parse_args(["--zone-norm", "off"]).zone_norm == "off"
    assert train.parse_args(["--recipe", "forum", "--zone-norm", "on"]).zone_norm == "on"


@needs_fonts
def test_ddp_two_processes_gloo(tmp_path, monkeypatch, tiny_cache):
    monkeypatch.setenv("HTR_CACHE", tiny_cache)
    out = tmp_path / "ddp"
    argv = ["--procs", "2", "--steps", "3", "--eval-every", "2", "--out", str(out), "--no-plots"] + TINY
    returned = train.main(argv)  # --procs: the trainer starts the 2 processes itself
    assert returned == json.loads((out / "results.json").read_text())
    res = json.loads((out / "results.json").read_text())
    assert res["world_size"] == 2 and res["steps"] == 3
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3


def test_progress_bar_shows_a_dash_until_the_first_evaluation():
    assert train.progress_postfix(1.23456, None) == {"loss": "1.235", "cer": "-"}
    assert train.progress_postfix(0.5, 0.2071) == {"loss": "0.500", "cer": "20.7%"}
    assert "nan" not in str(train.progress_postfix(2.0, None))


@needs_fonts
def test_line_spans_cover_every_character_in_order(tiny_cache, monkeypatch):
    """htr.align.line_spans: one span per character, left to right, inside the image."""
    from htr import align

    monkeypatch.setenv("HTR_CACHE", tiny_cache)
    tok = Tokenizer(synth.CHARSET)
    torch.manual_seed(0)
    net = model.CRNN(len(tok), 32)
    texts = ["abc", "a b"]
    images = [np.full((32, 120), 255, dtype=np.uint8), np.full((32, 90), 255, dtype=np.uint8)]
    spans = align.line_spans(net, images, texts, tok, "cpu")
    for line, text, image in zip(spans, texts, images):
        assert "".join(s.char for s in line) == text
        assert all(a.x1 <= b.x0 + 1e-9 for a, b in zip(line, line[1:]))
        assert 0 <= line[0].x0 and line[-1].x1 <= 128 and all(0 <= s.confidence <= 1 for s in line)
    assert net.training  # left as it was



# ---- decoding with the character LM -------------------------------------------------------------


def test_lm_text_leaves_out_training_lines_that_hold_a_held_out_line(tmp_path):
    from htr import lm_decode

    tok = Tokenizer("abcot ")
    train_lines = ["a cat", "the cat sat", "a cot", "cab"]
    lm, report = lm_decode.build_lm(train_lines, ["cat sat", "bat"], tok, 3, str(tmp_path / "lm.arpa"))
    assert (report.lines, report.dropped, report.held_out_in_text) == (3, 1, 0)
    assert report.chars == len("a cat") + len("a cot") + len("cab")
    assert lm.order == 3 and lm_decode.lm_tokens(tok) == ["<blank>", "a", "b", "c", "o", "t", "<space>"]
    assert lm_decode.held_out_in(["xx cat sat yy"], ["cat sat", "bat"]) == ["cat sat"]


def test_beam_with_lm_settles_what_the_emissions_leave_open(tmp_path):
    """Frames that cannot tell "a" from "o": greedy takes the slightly likelier "o", the LM
    (trained on lines with "cat") turns it into "cat"; the grid search finds a weight that does."""
    from htr import lm_decode

    tok = Tokenizer("acot ")
    lm, _ = lm_decode.build_lm(["a cat", "the cat", "cat cat", "at", "a cat at"], [], tok, 3, str(tmp_path / "lm.arpa"))
    frames = ["c", None, "t"]  # None: "o" 0.5, "a" 0.45
    lp = torch.full((len(frames), len(tok)), 1e-4)
    for t, c in enumerate(frames):
        if c is None:
            lp[t, tok.char_to_id["o"]], lp[t, tok.char_to_id["a"]] = 0.5, 0.45
        else:
            lp[t, tok.char_to_id[c]] = 1.0
    lp = (lp / lp.sum(-1, keepdim=True)).log()
    em = lm_decode.Emissions(lp[:, None], torch.tensor([len(frames)]), ["cat"])
    assert lm_decode.greedy(em, tok) == ["cot"] and lm_decode.beam(em, tok) == ["cot"]
    assert lm_decode.beam(em, tok, lm=lm, lm_weight=1.0) == ["cat"]
    best, table = lm_decode.tune(em, tok, lm, lambda refs, preds: train.error_rates(refs, preds)[0])
    assert table[best] == 0.0 and len(table) == len(lm_decode.LM_WEIGHTS) * len(lm_decode.TOKEN_SCORES)
