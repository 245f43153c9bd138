"""What the notebooks call: set-up, "make sure the earlier steps ran", the lab's files, fact
checks, exercises, the terminal cells, step 1's local app, step 2's other builder, and a
fresh start for step 5.
"""

from . import exercises, production
from .builders import (
    RecordedSample,
    other_builder,
)
from .change_reset import (
    FreshStart,
    forget_change,
    fresh_start_for_change,
    image_layer_pushes,
)
from .doctor import (
    DoctorCheck,
    doctor_checks,
    registry_verdict,
    render_checks,
)
from .earlier_steps import (
    Action,
    Ensured,
    ensure,
)
from .exercises import (
    Check,
)
from .fact_checks import (
    CheckFailed,
    Fact,
    expect,
)
from .local_app import (
    LocalApp,
    run_locally,
)
from .notebook import (
    doctor,
    exec_in,
    read_image_file,
    setup,
)
from .terminal_cells import terminal_environment
from .workspace import (
    APP_NAME,
    APP_TEMPLATE,
    BEAUTIFUL,
    DOCKERFILE,
    HELLO,
    WORKSPACE,
    app_source,
    image_name,
    write_app,
    write_dockerfile,
)

__all__ = [
    "APP_NAME",
    "Action",
    "APP_TEMPLATE",
    "BEAUTIFUL",
    "Check",
    "RecordedSample",
    "CheckFailed",
    "DOCKERFILE",
    "DoctorCheck",
    "Ensured",
    "Fact",
    "FreshStart",
    "HELLO",
    "LocalApp",
    "WORKSPACE",
    "app_source",
    "doctor",
    "doctor_checks",
    "ensure",
    "exec_in",
    "exercises",
    "other_builder",
    "production",
    "expect",
    "forget_change",
    "fresh_start_for_change",
    "image_layer_pushes",
    "image_name",
    "read_image_file",
    "registry_verdict",
    "render_checks",
    "run_locally",
    "setup",
    "terminal_environment",
    "write_app",
    "write_dockerfile",
]
