# Installs saltpeter's sp_wrapper on the minions from the master's file server and checks that
# it runs. Plain YAML (no Jinja), so it renders the same under every Salt renderer setting.
#
# On the master: copy the binary (from the saltpeter .deb: /usr/bin/sp_wrapper) to
# <file_roots>/saltpeter/sp_wrapper, e.g. /srv/salt/saltpeter/sp_wrapper, and this file to
# /srv/salt/saltpeter/sp_wrapper.sls. Then:
#   salt '*' state.apply saltpeter.sp_wrapper test=True     # what would change
#   salt '*' state.apply saltpeter.sp_wrapper
#   salt '*' cmd.run '/usr/local/bin/sp_wrapper --version'  # every minion prints "sp_wrapper X.Y.Z"
# The path is saltpeter's default_wrapper_path; change both together.

sp_wrapper_binary:
  file.managed:
    - name: /usr/local/bin/sp_wrapper
    - source: salt://saltpeter/sp_wrapper
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

# The wrapper's own log and the results it could not deliver (default_wrapper_logdir).
sp_wrapper_logdir:
  file.directory:
    - name: /var/log/sp_wrapper
    - user: root
    - group: root
    - mode: '0750'

# Fails the state run on a minion where the binary cannot run (wrong architecture, missing
# libraries): sp_wrapper --version exits 0 and prints "sp_wrapper <version>".
sp_wrapper_version:
  cmd.run:
    - name: /usr/local/bin/sp_wrapper --version
    - require:
      - file: sp_wrapper_binary
