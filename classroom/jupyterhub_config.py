# JupyterHub for a classroom on one machine: scripts/classroom.sh starts it with the
# CLASSROOM_* environment below (see docs/INSTRUCTORS.md).
#
# - DockerSpawner (learner_spawner.py): each learner's server is a container of the course
#   image, with CPU and memory limits, in the network namespace of the learner's engine;
# - before it starts, the learner's own engine (a rootless DinD container on a network of
#   its own, learner_engine.py) is started, and only that server mounts its TLS client
#   certificates; after the server stops (by the learner, the admin, or the idle culler)
#   the engine and its network are removed;
# - jupyterhub-idle-culler stops servers idle for CLASSROOM_CULL_TIMEOUT seconds;
# - the "progress" service is the instructor's live table of exercise results;
# - WorkshopAuthenticator: a name + the workshop code + a password of one's own (the first
#   login claims the name); the instructor, made before the hub opens, is the admin.
import asyncio
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import learner_engine  # noqa: E402

env = os.environ
plan = learner_engine.Plan.from_env()
NAME = plan.classroom
INSTRUCTOR = env.get("CLASSROOM_INSTRUCTOR", "instructor")
PYTHON = sys.executable

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

# --- where the hub listens: learners reach the proxy; servers reach the hub's API -------
c.JupyterHub.ip = env.get("CLASSROOM_IP", "127.0.0.1")
c.JupyterHub.port = int(env.get("CLASSROOM_PORT", "8000"))
# this machine's address on the classroom's hub network (which no container joins): a
# server on any learner's network reaches it, as every address of this machine, while
# Docker drops what would cross from one learner's network to another's
c.JupyterHub.hub_ip = env["CLASSROOM_HUB_IP"]
c.JupyterHub.hub_port = int(env.get("CLASSROOM_HUB_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env.get('CLASSROOM_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [env.get("CLASSROOM_CHP", "configurable-http-proxy")]
# Passwords cross the network: off loopback only HTTPS, unless CLASSROOM_ALLOW_HTTP=1
# (scripts/classroom.sh makes a self-signed certificate when none is given).
if env.get("CLASSROOM_SSL_CERT") and env.get("CLASSROOM_SSL_KEY"):
    c.JupyterHub.ssl_cert = env["CLASSROOM_SSL_CERT"]
    c.JupyterHub.ssl_key = env["CLASSROOM_SSL_KEY"]
elif (c.JupyterHub.ip not in ("127.0.0.1", "::1", "localhost")
      and env.get("CLASSROOM_ALLOW_HTTP") != "1"):
    sys.exit(f"classroom: refusing plain HTTP on {c.JupyterHub.ip}: learners' passwords "
             "would cross the network in clear; give CLASSROOM_SSL_CERT and "
             "CLASSROOM_SSL_KEY, or set CLASSROOM_ALLOW_HTTP=1 to accept that.")
c.JupyterHub.db_url = f"sqlite:///{plan.state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(plan.state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(plan.state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # the hub's shutdown stops every server (and engine)
c.JupyterHub.active_server_limit = int(env.get("CLASSROOM_LEARNERS", "3"))
c.JupyterHub.last_activity_interval = int(env.get("CLASSROOM_ACTIVITY_INTERVAL", "60"))

# --- who may log in --------------------------------------------------------------------
c.JupyterHub.authenticator_class = "workshop_auth.WorkshopAuthenticator"
c.JupyterHub.template_paths = [str(HERE / "templates")]  # the login form's code field
c.WorkshopAuthenticator.instructor = INSTRUCTOR
c.WorkshopAuthenticator.claims_dir = str(plan.state / "claims")  # hashed, 0600 each
c.Authenticator.admin_users = {INSTRUCTOR}
c.Authenticator.allow_all = True  # the workshop code and each name's password gate

# --- each learner's server ---------------------------------------------------------------
c.JupyterHub.spawner_class = "learner_spawner.LearnerSpawner"
c.DockerSpawner.image = env.get("CLASSROOM_LEARNER_IMAGE", f"{NAME}-learner:latest")
c.DockerSpawner.pull_policy = "never"  # built here from the stand-ins; nothing is pulled
c.DockerSpawner.prefix = NAME
c.DockerSpawner.name_template = "{prefix}-{username}-server"
c.DockerSpawner.use_internal_ip = True  # the engine's address: LearnerSpawner.get_ip_and_port
c.DockerSpawner.remove = True  # the home disk keeps the learner's work
c.DockerSpawner.mem_limit = env.get("CLASSROOM_SERVER_MEMORY", "1g").upper()  # e.g. 1G
c.DockerSpawner.cpu_limit = float(env.get("CLASSROOM_SERVER_CPUS", "1"))
# The server writes only to its home and progress disks (learner_engine) and a bounded /tmp:
# its own layer is read-only, so nothing a learner writes lands on this machine's disk.
c.DockerSpawner.extra_host_config = {
    "pids_limit": int(env.get("CLASSROOM_SERVER_PIDS", "512")),
    "read_only": True,
    "tmpfs": {"/tmp": f"size={env.get('CLASSROOM_SERVER_TMP', '256m')},mode=1777"},
}
c.DockerSpawner.extra_create_kwargs = {
    "labels": {learner_engine.LABEL: NAME, f"{learner_engine.LABEL}.role": "server",
               f"{learner_engine.LABEL}.user": "{username}"}}
c.DockerSpawner.volumes = {
    str(plan.home_dir("{username}")): "/home/learner",
    str(plan.state / "progress" / "{username}"): "/srv/progress",
}
c.DockerSpawner.read_only_volumes = {f"{NAME}-{{username}}-certs": "/certs"}
c.DockerSpawner.environment = {
    # the learner's own engine, in the network namespace the server shares (TLS;
    # certificates in /certs/client, from the image's ENV); what the learner publishes
    # stays on 127.0.0.1 there, labkit's default: their server reaches it, nobody else
    "DOCKER_HOST": "tcp://localhost:2376",
    "LABKIT_USER": lambda spawner: spawner.escaped_name,
    "LABKIT_PROGRESS_FILE": "/srv/progress/progress.jsonl",
    "JUPYTERHUB_ACTIVITY_INTERVAL": env.get("CLASSROOM_ACTIVITY_INTERVAL", "60"),
}
c.DockerSpawner.start_timeout = 180
c.DockerSpawner.http_timeout = 120


async def start_engine(spawner):
    """pre_spawn_hook: the learner's engine first (its certificates must exist)."""
    user = spawner.escaped_name
    spawner.log.info("Starting the engine of %s", user)
    host = await asyncio.to_thread(learner_engine.start, plan, user)
    spawner.log.info("Engine of %s answers at %s", user, host)


async def stop_engine(spawner):
    """post_stop_hook: the server stopped (culled, or by hand): remove its engine too."""
    user = spawner.escaped_name
    await asyncio.to_thread(learner_engine.stop, plan, user)
    spawner.log.info("Removed the engine of %s", user)


c.Spawner.pre_spawn_hook = start_engine
c.Spawner.post_stop_hook = stop_engine

# --- services: the idle culler, the instructor's progress table, the admin client --------
cull_timeout = env.get("CLASSROOM_CULL_TIMEOUT", "3600")
cull_every = env.get("CLASSROOM_CULL_EVERY", "300")
service_port = int(env.get("CLASSROOM_SERVICE_PORT", "8010"))
# Each service runs through tied.py, which ends it when the hub ends, however the hub ends,
# and carries the hub's tag, by which `scripts/classroom.sh stop` finds anything left.
TIED = [PYTHON, str(HERE / "tied.py")]
TAG = {"CLASSROOM_HUB_TAG": env.get("CLASSROOM_HUB_TAG", "")}
c.JupyterHub.services = [
    {"name": "idle-culler",
     "command": [*TIED, PYTHON, "-m", "jupyterhub_idle_culler",
                 f"--timeout={cull_timeout}", f"--cull-every={cull_every}"],
     "environment": TAG},
    {"name": "progress",
     "url": f"http://127.0.0.1:{service_port}",
     "command": [*TIED, PYTHON, str(HERE / "progress_service.py")],
     "environment": {"CLASSROOM_PROGRESS_DIR": str(plan.state / "progress"),
                     "PYTHONPATH": env.get("CLASSROOM_REPO", str(HERE.parent)), **TAG},
     "oauth_no_confirm": True},
]
if env.get("CLASSROOM_ADMIN_TOKEN"):  # the scripts' and tests' client of the REST API
    c.JupyterHub.services.append({"name": "classroom-admin",
                                  "api_token": env["CLASSROOM_ADMIN_TOKEN"]})
c.JupyterHub.load_roles = [
    {"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
    {"name": "progress", "services": ["progress"],
     "scopes": ["list:users", "read:users:activity", "read:servers"]},
    {"name": "instructor", "users": [INSTRUCTOR],
     "scopes": ["access:services!service=progress"]},
]
if env.get("CLASSROOM_ADMIN_TOKEN"):
    c.JupyterHub.load_roles.append(
        {"name": "classroom-admin", "services": ["classroom-admin"],
         "scopes": ["admin:users", "admin:servers", "tokens", "access:servers",
                    "access:services!service=progress", "read:hub"]})
