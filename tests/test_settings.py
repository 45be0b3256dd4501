from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.settings import load_settings, settings_for_display


def test_repo_configs_load_and_root_is_repo():
    repo = Path(__file__).resolve().parent.parent
    for name in ("monitor.toml", "demo.toml"):
        settings = load_settings(repo / "config" / name, {})
        assert settings.root == repo
        assert settings.feeds, f"{name} lists no feeds"


def test_unknown_key_names_file_and_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[schedule]\npoll_minuts = 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert str(err.value) == f"{cfg}: schedule.poll_minuts: unknown key"


def test_bad_value_names_key_and_problem(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[smtp]\nsecurity = "tls"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert "smtp.security" in str(err.value) and "none" in str(err.value)


def test_bad_timezone_and_feed_url(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[digest]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="digest.timezone: unknown time zone"):
        load_settings(cfg, {})
    cfg.write_text('[[feeds]]\nname = "x"\nurl = "ftp://example.com/feed"\n')
    with pytest.raises(ConfigError, match=r"feeds.0.url: must start with"):
        load_settings(cfg, {})


def test_invalid_toml_and_missing_file(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[storage\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, {})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", {})


def test_password_only_from_env_and_masked(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text('[smtp]\npassword_env = "MY_SMTP_PW"\n[storage]\nurl = "postgresql+psycopg://u:hunter2@db/x"\n')
    settings = load_settings(cfg, {"MY_SMTP_PW": "s3cret"})
    assert settings.smtp.password.get_secret_value() == "s3cret"
    shown = str(settings_for_display(settings))
    assert "s3cret" not in shown and "hunter2" not in shown
    cfg.write_text('[smtp]\npassword = "inline"\n')
    with pytest.raises(ConfigError, match="smtp.password: secrets are not read from the file"):
        load_settings(cfg, {})


def test_relative_paths_resolve_against_the_config_files_own_folder(tmp_path):
    (tmp_path / "etc").mkdir()
    cfg = tmp_path / "etc" / "m.toml"
    cfg.write_text('[storage]\nurl = "sqlite:///data/x.db"\n[[feeds]]\nname = "d"\nurl = "file:feeds/a.xml"\n'
                   '[model]\ntaxonomy_path = "tax.toml"\n')
    settings = load_settings(cfg, {})
    assert settings.database_url == f"sqlite:///{tmp_path}/etc/data/x.db"
    assert settings.feeds[0].url == (tmp_path / "etc" / "feeds" / "a.xml").as_uri()
    assert settings.path(settings.model.taxonomy_path) == tmp_path / "etc" / "tax.toml"
    # `root` moves the base (itself relative to the config's folder): the repo's configs use "..".
    cfg.write_text('root = ".."\n[storage]\nurl = "sqlite:///data/x.db"\n')
    assert load_settings(cfg, {}).database_url == f"sqlite:///{tmp_path}/data/x.db"


def test_a_config_anywhere_uses_the_shipped_taxonomy_entities_and_model(tmp_path):
    from monitor.taxonomy import load_taxonomy

    (tmp_path / "etc" / "tension-monitor").mkdir(parents=True)
    cfg = tmp_path / "etc" / "tension-monitor" / "monitor.toml"
    cfg.write_text('[[feeds]]\nname = "x"\nurl = "https://example.com/rss"\n')
    settings = load_settings(cfg, {"HOME": str(tmp_path / "home")})
    assert len(load_taxonomy(settings.path(settings.model.taxonomy_path)).ids) == 13
    assert settings.path(settings.nlp.entities_path).is_file()
    assert (settings.path(settings.model.artefact_dir) / "model-card.json").is_file()
    # No [storage]: the SQLite file in the XDG data folder, not the current folder.
    assert settings.database_url == f"sqlite:///{tmp_path}/home/.local/share/tension-monitor/monitor.db"


def test_config_lookup_order(tmp_path):
    from monitor.settings import find_config

    cwd, xdg = tmp_path / "work", tmp_path / "xdg"
    cwd.mkdir()
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(xdg)}
    assert find_config(None, env, cwd) is None
    (xdg / "tension-monitor").mkdir(parents=True)
    (xdg / "tension-monitor" / "config.toml").write_text("")
    assert find_config(None, env, cwd) == xdg / "tension-monitor" / "config.toml"
    (cwd / "tension-monitor.toml").write_text("")
    assert find_config(None, env, cwd) == cwd / "tension-monitor.toml"
    assert find_config(None, {**env, "TENSION_MONITOR_CONFIG": "/e.toml"}, cwd) == Path("/e.toml")
    assert find_config("/x.toml", {**env, "TENSION_MONITOR_CONFIG": "/e.toml"}, cwd) == Path("/x.toml")


def test_default_settings_keep_the_store_in_xdg_data(tmp_path):
    from monitor.settings import default_settings

    settings = default_settings({"XDG_DATA_HOME": str(tmp_path / "data")}, cwd=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path}/data/tension-monitor/monitor.db"
    assert settings.feeds == [] and settings.source_path is None
