# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module that connects to a site's database guarantees about its password."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
notes:
  - Connects to the site's PostgreSQL database as C(<site_dir>/shared/config/database.yml) describes it. The
    password is read on the App server and handed to the PostgreSQL tools through a temporary 0600 passfile
    that is removed afterwards. It is never on a command line, in a log or in the result.
"""
