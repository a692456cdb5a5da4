# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option that names the site a module works on (its folder on the host the module runs on), and the
authors of the modules that work on a site."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
author:
  - sec maintainers (!UNKNOWN)
options:
  site_dir:
    description:
      - The site's folder (the site dir) on the host the module runs on, for example
        C(/var/rails/com_teststudio_prod) on the site's App server.
    type: path
    required: true
"""
